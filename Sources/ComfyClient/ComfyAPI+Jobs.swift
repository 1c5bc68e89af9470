import ComfyCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What a server offers beyond ComfyUI 0.3.64, learnt by asking it (`probeFeatures`).
public struct ServerFeatures: Sendable, Equatable {
    /// `system.comfyui_version` from `/system_stats`.
    public var version: String?
    /// `/api/jobs` (ComfyUI 0.38): one call for a prompt's status, an atomic cancel.
    public var jobs: Bool

    public init(version: String? = nil, jobs: Bool = false) {
        self.version = version
        self.jobs = jobs
    }

    /// How `doctor` and `servers` name the API in use.
    public var apiDescription: String { jobs ? "jobs API (/api/jobs: status and cancel)" : "queue API (/queue, /history, /interrupt)" }
}

/// Where a prompt stands on its server, in one answer.
public enum PromptState: Sendable, Equatable {
    case queued
    case running
    /// Finished (success, failure or interrupted); a success's outputs come from `/history`.
    case ended(HistoryOutcome)
    /// The server does not know it (never received, or removed from its queue before it ran).
    case unknown
}

extension ComfyAPI {
    /// Whether the server has ComfyUI 0.38's jobs API: `GET /api/jobs?limit=1` answers (404 on
    /// older servers).
    public func hasJobsAPI() async throws(ComfyAPIError) -> Bool {
        let (status, data) = try await send("GET", "/api/jobs?limit=1")
        if status == 404 || status == 405 { return false }
        try expectOK(status, data, "GET /api/jobs")
        return try parse(data, "GET /api/jobs")["jobs"]?.arrayValue != nil
    }

    /// The version and what the server offers.
    public func probeFeatures() async throws(ComfyAPIError) -> ServerFeatures {
        let stats = try await systemStats()
        return ServerFeatures(version: stats.comfyUIVersion, jobs: try await hasJobsAPI())
    }

    /// A prompt's state: with the jobs API one `GET /api/jobs/{id}`; otherwise `/queue`, then
    /// `/history/{id}` (whose `{}` alone cannot tell "still running" from "never heard of").
    public func state(of promptID: String, jobs: Bool) async throws(ComfyAPIError) -> PromptState {
        if jobs {
            let path = "/api/jobs/\(promptID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? promptID)"
            let (status, data) = try await send("GET", path)
            if status == 404 { return .unknown }
            try expectOK(status, data, "GET /api/jobs/\(promptID)")
            let job = try parse(data, "GET /api/jobs/\(promptID)")
            switch job["status"]?.stringValue {
            case "pending": return .queued
            case "in_progress": return .running
            case "completed": return .ended(.success(outputs: []))
            case "cancelled": return .ended(.interrupted(nodeID: nil, classType: nil))
            case "failed":
                let error = job["execution_error"] ?? .null
                return .ended(
                    .failed(
                        ExecutionFailure(
                            nodeID: error["node_id"]?.stringValue, classType: error["node_type"]?.stringValue,
                            exceptionType: error["exception_type"]?.stringValue ?? "",
                            message: error["exception_message"]?.stringValue ?? "the server recorded an error")))
            case let other:
                throw self.error("GET /api/jobs/\(promptID)", .notComfyUI("unknown job status \(other ?? "(none)")"))
            }
        }
        let queued = try await queue()
        if queued.running.contains(promptID) { return .running }
        if queued.pending.contains(promptID) { return .queued }
        guard let outcome = try await history(promptID)?.outcome else { return .unknown }
        return .ended(outcome)
    }

    /// The ids of prompts queued or running on the server, in one call where it has the jobs
    /// API (`GET /api/jobs?status=pending,in_progress`), else from `/queue`.
    public func unfinished(jobs: Bool) async throws(ComfyAPIError) -> Set<String> {
        guard jobs else {
            let snapshot = try await queue()
            return Set(snapshot.running + snapshot.pending)
        }
        let (status, data) = try await send("GET", "/api/jobs?status=pending,in_progress&limit=10000")
        try expectOK(status, data, "GET /api/jobs")
        return Set((try parse(data, "GET /api/jobs")["jobs"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
    }

    /// Takes prompts off the server, whether queued or running. With the jobs API, one
    /// `POST /api/jobs/cancel` for all of them (atomic for the running one: no other prompt can be
    /// hit); otherwise out of the queue first (so none can start), then an interrupt aimed at each.
    public func cancel(_ promptIDs: [String], jobs: Bool) async throws(ComfyAPIError) {
        guard !promptIDs.isEmpty else { return }
        if jobs {
            let (status, data) = try await send("POST", "/api/jobs/cancel", body: ["job_ids": .array(promptIDs.map { .string($0) })])
            try expectOK(status, data, "POST /api/jobs/cancel")
            return
        }
        try await delete(promptIDs)
        for promptID in promptIDs { try await interrupt(promptID) }
    }
}
