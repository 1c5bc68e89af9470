import ComfyCore
import Foundation
import HTTPServer

/// ComfyUI 0.38's jobs API (comfy_execution/jobs.py, server.py): a prompt's status in one call,
/// and an atomic cancel of queued or running prompts.
extension Simulator {
    /// `/features` as the profile's ComfyUI answers it.
    func features() -> JSONValue {
        var flags: JSONObject = ["supports_preview_metadata": true, "max_upload_size": .int(Int(options.maxUploadSize))]
        if options.profile == .v0_38 {
            flags["supports_model_type_tags"] = true
            flags["node_replacements"] = true
            flags["assets"] = false
            flags["extension"] = ["manager": ["supports_v4": true]]
        }
        return .object(flags)
    }

    func jobs(_ request: HTTPRequest, body: JSONValue?) -> HTTPResponse {
        let path = request.path
        switch (request.method, path) {
        case ("GET", "/api/jobs"):
            let wanted = Set((request.query["status"] ?? "").split(separator: ",").map(String.init))
            let all: Set<String> = ["pending", "in_progress", "completed", "failed", "cancelled"]
            guard wanted.isSubset(of: all) else { return json(["error": .string("Invalid status: \(wanted.subtracting(all).sorted().joined(separator: ","))")], status: 400) }
            let limit = Int(request.query["limit"] ?? "") ?? Int.max
            let offset = Int(request.query["offset"] ?? "") ?? 0
            let list = state.withLock { state in allJobs(state) }.filter { wanted.isEmpty || wanted.contains($0["status"]?.stringValue ?? "") }
            let page = Array(list.dropFirst(offset).prefix(limit))
            return json([
                "jobs": .array(page),
                "pagination": ["offset": .int(offset), "limit": limit == Int.max ? .null : .int(limit), "total": .int(list.count), "has_more": .bool(offset + page.count < list.count)],
            ])
        case ("POST", "/api/jobs/cancel"):
            guard let ids = body?["job_ids"]?.arrayValue else { return json(["error": "job_ids must be a list"], status: 400) }
            let texts = ids.map { $0.stringValue ?? $0.serialized() }
            let invalid = texts.filter { UUID(uuidString: $0)?.uuidString.lowercased() != $0 }
            guard invalid.isEmpty else {
                return json(["error": "job_ids contains invalid id(s)", "invalid_ids": .array(invalid.map { .string($0) })], status: 400)
            }
            let cancelled = texts.map(cancelJob).contains(true)
            return json(["cancelled": .bool(cancelled)])
        case ("POST", _) where path.hasSuffix("/cancel"):
            let id = String(path.dropFirst("/api/jobs/".count).dropLast("/cancel".count))
            return json(["cancelled": .bool(cancelJob(id))])
        case ("GET", _):
            let id = String(path.dropFirst("/api/jobs/".count))
            guard let job = state.withLock({ state in allJobs(state).first { $0["id"]?.stringValue == id } }) else {
                return json(["error": "Job not found"], status: 404)
            }
            return json(job)
        default:
            return notFound(request)
        }
    }

    /// `interrupt_if_running` or `delete_queue_item`, under one lock: no other prompt can be hit.
    private func cancelJob(_ id: String) -> Bool {
        let (cancelled, remaining) = state.withLock { state -> (Bool, Int?) in
            if let running = state.running, running.promptID == id {
                state.interruptRequested = true
                return (true, nil)
            }
            guard let index = state.queue.firstIndex(where: { $0.promptID == id }) else { return (false, nil) }
            state.queue.remove(at: index)
            return (true, state.queueRemaining)
        }
        if let remaining { broadcastStatus(remaining) }
        return cancelled
    }

    /// Every job the server knows: running, queued, then history (newest first), as
    /// `normalize_history_item` shapes them.
    private func allJobs(_ state: borrowing SimulatorState) -> [JSONValue] {
        var jobs: [JSONValue] = []
        func createTime(_ extra: JSONValue) -> JSONValue { extra["create_time"] ?? .null }
        if let running = state.runningEntry {
            jobs.append([
                "id": .string(running.promptID), "status": "in_progress", "priority": .number(JSONNumber(running.number)),
                "create_time": createTime(running.extraData),
            ])
        }
        for queued in state.queue {
            jobs.append([
                "id": .string(queued.promptID), "status": "pending", "priority": .number(JSONNumber(queued.number)),
                "create_time": createTime(queued.extraData),
            ])
        }
        for id in state.historyOrder.reversed() {
            guard let entry = state.history[id] else { continue }
            let messages = entry["status"]?["messages"]?.arrayValue ?? []
            let names = messages.compactMap { $0.arrayValue?.first?.stringValue }
            let status: String
            switch entry["status"]?["status_str"]?.stringValue {
            case "success": status = "completed"
            case "error": status = names.contains("execution_interrupted") ? "cancelled" : "failed"
            default: status = "completed"
            }
            var job: JSONObject = [
                "id": .string(id), "status": .string(status), "priority": entry["prompt"]?.arrayValue?.first ?? .null,
                "outputs_count": .int((entry["outputs"]?.objectValue ?? JSONObject()).reduce(0) { $0 + ($1.1["images"]?.arrayValue?.count ?? 0) }),
                "outputs": entry["outputs"] ?? [:], "execution_status": entry["status"] ?? .null,
            ]
            if let error = messages.first(where: { $0.arrayValue?.first == "execution_error" })?.arrayValue?.dropFirst().first { job["execution_error"] = error }
            let extra = entry["prompt"]?.arrayValue.map { $0.count > 3 ? $0[3] : .null } ?? .null
            if let time = extra["create_time"] { job["create_time"] = time }
            jobs.append(.object(job))
        }
        return jobs
    }
}
