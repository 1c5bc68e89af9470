import ComfyCore
import Foundation
import HTTPServer
import InputFiles
import QueueStore
import Synchronization

/// `comfyq serve`: the queue in a browser. Each request opens the queue read-only in spirit
/// (SQLite in WAL mode lets a `comfyq run` in another process write meanwhile) and renders from
/// it; `/events` tells open pages when the queue changed.
package final class ServeApp: Sendable {
    let databasePath: String
    /// Required on every request when set (query `token`, which also sets a cookie; the cookie;
    /// or `Authorization: Bearer`).
    let token: String?
    /// How often an event stream looks at the queue.
    let pollInterval: Duration

    /// Tells the event streams when the queue changed.
    let changes: ChangeFeed

    /// Queues jobs the way `comfyq add` does (the command line's loading and checks).
    let intake: any JobIntake
    /// Pages on these origins (`--allow-origin`, such as ComfyUI's) may call the API and the
    /// controls from the browser: they get CORS answers, and their POSTs count as this
    /// server's own pages' (with the token too, when there is one).
    let allowedOrigins: Set<String>

    package init(databasePath: String, token: String?, intake: any JobIntake, allowedOrigins: [String] = [], pollInterval: Duration = .milliseconds(250)) {
        self.databasePath = databasePath
        self.intake = intake
        self.allowedOrigins = Set(allowedOrigins)
        self.token = token
        self.pollInterval = pollInterval
        changes = ChangeFeed(databasePath: databasePath, interval: pollInterval.seconds)
    }

    package func handle(_ request: HTTPRequest, _ connection: ClientConnection) -> HTTPServer.Reply {
        let cors = corsHeaders(request)
        if request.method == "OPTIONS" { return .response(preflight(request, cors: cors)) }
        var reply = answer(request, connection, cors: cors)
        if case .response(var response) = reply {
            response.headers += cors
            reply = .response(response)
        }
        return reply
    }

    /// A page on an allowed origin may read what it asked for (`Access-Control-Allow-Origin`);
    /// any other origin gets nothing of the kind, so its browser keeps the answer from it.
    func corsHeaders(_ request: HTTPRequest) -> [(String, String)] {
        guard let origin = request.headers["origin"], allowedOrigins.contains(origin) else { return [] }
        return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    }

    /// The browser's question before a cross-origin call with a JSON body or a token: yes for an
    /// allowed origin, no for any other.
    func preflight(_ request: HTTPRequest, cors: [(String, String)]) -> HTTPResponse {
        guard !cors.isEmpty else {
            return HTTPResponse(status: 403, contentType: "text/plain", body: Array("cross-origin request refused: this origin is not one comfyq serve --allow-origin names".utf8))
        }
        return HTTPResponse(
            status: 204, contentType: "text/plain",
            headers: cors + [
                ("Access-Control-Allow-Methods", "GET, POST"), ("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Requested-By"),
                ("Access-Control-Max-Age", "600"),
            ])
    }

    func answer(_ request: HTTPRequest, _ connection: ClientConnection, cors: [(String, String)]) -> HTTPServer.Reply {
        var setCookie: [(String, String)] = []
        if let token {
            let cookie = (request.headers["cookie"] ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            let bearer = request.headers["authorization"] == "Bearer \(token)"
            if request.query["token"] == token {
                setCookie = [("Set-Cookie", "comfyq_token=\(token); Path=/; HttpOnly; SameSite=Strict")]
            } else if !(bearer || cookie.contains("comfyq_token=\(token)")) {
                return .response(HTTPResponse(status: 403, contentType: "text/plain", body: Array("a token is needed: open the URL comfyq serve printed".utf8)))
            }
        }
        if request.method == "POST" { return .response(control(request, setCookie: setCookie)) }
        guard request.method == "GET" else { return .response(HTTPResponse(status: 405, contentType: "text/plain")) }
        if request.path == "/events" { return stream(connection, cors: cors) }
        var response: HTTPResponse
        do {
            let queue = try Queue(path: databasePath)
            response = try route(request.path, query: request.query, queue)
        } catch {
            response = HTTPResponse(status: 500, contentType: "text/plain", body: Array("the queue: \(error)".utf8))
        }
        response.headers += setCookie
        return .response(response)
    }

    /// `POST /jobs/NAME/cancel|retry`, `/jobs/NAME/INDEX/cancel|retry`, `/drain`, the ratings,
    /// the follow-ups and the job API (`/api/jobs`, `/api/inspect`). A browser's form posts from
    /// this server's own pages (its `Origin` or `Referer` is this server), a page on an origin
    /// `--allow-origin` names (ComfyUI's), a script with the token (`Authorization: Bearer`) or,
    /// on loopback without a token, `X-Requested-By: comfyq`: another site's page cannot make a
    /// visitor's browser cancel or add anything.
    package func control(_ request: HTTPRequest, setCookie: [(String, String)]) -> HTTPResponse {
        let host = request.headers["host"] ?? ""
        let origin = request.headers["origin"] ?? request.headers["referer"].map { referer -> String in
            let parts = referer.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
            return parts.count >= 3 ? parts[0..<3].joined(separator: "/") : referer
        }
        let sameOrigin = !host.isEmpty && origin == "http://\(host)"
        let allowed = request.headers["origin"].map(allowedOrigins.contains) ?? false
        let fromScript = token.map { request.headers["authorization"] == "Bearer \($0)" } ?? (request.headers["x-requested-by"] == "comfyq")
        guard sameOrigin || fromScript || allowed else {
            return HTTPResponse(status: 403, contentType: "text/plain", body: Array("cross-site request refused: post from comfyq's own pages, or send the token".utf8))
        }
        // A script, or a page of an allowed origin, is answered with JSON, not a redirect.
        let script = fromScript || allowed
        let parts = request.path.split(separator: "/").map(String.init)
        if parts == ["api", "jobs"] { return addJob(request, setCookie: setCookie) }
        if parts == ["api", "inspect"] { return inspect(request) }
        if parts == ["drain"] {
            do {
                let asked = try Self.requestDrain(try Queue(path: databasePath))
                if script { return HTTPResponse(status: asked > 0 ? 200 : 409, body: Array(JSONValue.object(["runs": .int(asked)]).serialized().utf8), headers: setCookie) }
                return HTTPResponse(status: 303, contentType: "text/plain", headers: [("Location", asked > 0 ? "/?drained=\(asked)" : "/?drained=0")] + setCookie)
            } catch {
                return HTTPResponse(status: 500, contentType: "text/plain", body: Array("the queue: \(error)".utf8))
            }
        }
        if parts.count == 4, parts[0] == "jobs", parts[3] == "rate" { return rate(request, parts: parts, script: script, setCookie: setCookie) }
        if parts.count == 4, parts[0] == "jobs", parts[2] == "followup" { return followUp(parts: parts, script: script, setCookie: setCookie) }
        guard parts.count == 3 || parts.count == 4, parts[0] == "jobs", let action = parts.last, action == "cancel" || action == "retry" else {
            return notFound("no control \(request.path)")
        }
        do {
            let queue = try Queue(path: databasePath)
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }) else { return notFound("no job \(parts[1])") }
            let target: Queue.Target
            if parts.count == 4 {
                guard let index = Int(parts[2]), try queue.item(jobID: job.id, index: index) != nil else { return notFound("no item \(parts[1])/\(parts[2])") }
                target = .item(job: job.id, index: index)
            } else {
                target = .job(job.id)
            }
            let now = Date().timeIntervalSince1970
            let changed = action == "cancel" ? try queue.cancel(target, now: now) : try queue.retry(target, now: now)
            let back = "/jobs/\(ServePages.segment(job.name))" + (parts.count == 4 ? "/\(parts[2])" : "")
            if script {
                return HTTPResponse(status: 200, body: Array(JSONValue.object(["changed": .int(changed)]).serialized().utf8), headers: setCookie)
            }
            return HTTPResponse(status: 303, contentType: "text/plain", headers: [("Location", back)] + setCookie)
        } catch {
            return HTTPResponse(status: 500, contentType: "text/plain", body: Array("the queue: \(error)".utf8))
        }
    }

    /// `POST /jobs/NAME/INDEX/rate` with `rating=starred|rejected|none` (a form, or a script's
    /// body): back to `back` (this server's own page) or, for a script, `{"rated": n}`.
    func rate(_ request: HTTPRequest, parts: [String], script: Bool, setCookie: [(String, String)]) -> HTTPResponse {
        var fields: [String: String] = [:]
        for pair in String(decoding: request.body, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0) }
            if kv.count == 2 { fields[kv[0]] = kv[1] }
        }
        let rating: Rating?
        switch fields["rating"] ?? "" {
        case "starred": rating = .starred
        case "rejected": rating = .rejected
        case "none": rating = nil
        default: return HTTPResponse(status: 400, contentType: "text/plain", body: Array("rating must be starred, rejected or none".utf8))
        }
        do {
            let queue = try Queue(path: databasePath)
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }), let index = Int(parts[2]), index >= 0, index < job.total else {
                return notFound("no item \(parts[1])/\(parts[2])")
            }
            let result = try queue.rate(jobID: job.id, indices: [index], as: rating)
            if script || (request.headers["accept"] ?? "").contains("application/json") {
                return HTTPResponse(status: result.rated == 1 ? 200 : 409, body: Array(JSONValue.object(["rated": .int(result.rated)]).serialized().utf8), headers: setCookie)
            }
            let back = fields["back"].flatMap { $0.hasPrefix("/jobs/") && !$0.contains("//") ? $0 : nil } ?? ViewerPages.viewURL(job.name, index)
            return HTTPResponse(status: 303, contentType: "text/plain", headers: [("Location", back)] + setCookie)
        } catch {
            return HTTPResponse(status: 500, contentType: "text/plain", body: Array("the queue: \(error)".utf8))
        }
    }

    /// `POST /jobs/NAME/followup/KEY`: the job file its `followups` names, queued for its starred
    /// pictures (as `comfyq add FILE --from NAME --starred`), then its page.
    func followUp(parts: [String], script: Bool, setCookie: [(String, String)]) -> HTTPResponse {
        func refused(_ status: Int, _ message: String) -> HTTPResponse {
            HTTPResponse(status: status, contentType: "text/plain", body: Array(message.utf8), headers: setCookie)
        }
        do {
            let queue = try Queue(path: databasePath)
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }) else { return notFound("no job \(parts[1])") }
            guard let file = try queue.settings(of: job).followups.first(where: { $0.name == parts[3] })?.path else {
                return notFound("\(job.name) has no follow-up \(parts[3])")
            }
            let added = try intake.addFollowUp(file: file, from: job.name, queue: queue)
            if script {
                let body = JSONValue.array(added.map { ["job": .string($0.name), "items": .int($0.items)] })
                return HTTPResponse(status: 200, body: Array(body.serialized().utf8), headers: setCookie)
            }
            return HTTPResponse(status: 303, contentType: "text/plain", headers: [("Location", "/jobs/\(ServePages.segment(added.first?.name ?? job.name))")] + setCookie)
        } catch {
            return refused(409, "\(error)")
        }
    }

    /// Asks the runs whose heartbeat is recent (they write one every 5 s) to drain.
    package static func requestDrain(_ queue: Queue) throws -> Int {
        let now = Date().timeIntervalSince1970
        return try queue.requestDrain(aliveSince: now - 15, now: now)
    }

    private func html(_ text: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/html; charset=utf-8", body: Array(text.utf8), headers: [("Cache-Control", "no-store")])
    }

    private func notFound(_ what: String) -> HTTPResponse { html(ServePages.notFound(what), status: 404) }

    /// `/`, `/api/status`, `/jobs/NAME`, `/jobs/NAME/INDEX`, `/jobs/NAME/INDEX/workflow.json`,
    /// `/files|thumbs|sidecars/NAME/INDEX/N`.
    package func route(_ path: String, query: [String: String] = [:], _ queue: Queue) throws -> HTTPResponse {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch parts.first {
        case nil:
            let jobs = try queue.jobs()
            let inFlight = try queue.items(states: [.submitting, .running])
            let failures = Array(try queue.items(states: [.failed]).suffix(20))
            let recent = try queue.recentOutputs(limit: 12).map { output in
                (output.job, output.index, "/thumbs/\(ServePages.segment(output.job))/\(output.index)/0")
            }
            let now = Date().timeIntervalSince1970
            let servers = try ServerView.read(queue, now: now)
            let runners = try RunnerView.read(queue, now: now)
            let notice = query["drained"].map { $0 == "0" ? "No run is going: nothing to drain." : "Asked \($0) run(s) to drain: what is in flight finishes, nothing new starts." }
            return html(
                ServePages.overview(
                    jobs: jobs, inFlight: inFlight, failures: failures, servers: servers, runners: runners, recent: recent, held: try queue.held(),
                    notice: notice))
        case "api" where parts == ["api", "status"]:
            return json(try QueueDocuments.status(queue, job: nil, states: []))
        case "jobs" where parts.count == 4 && parts[2] == "view":
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }), let index = Int(parts[3]), index >= 0, index < job.total else {
                return notFound("no item \(parts[1])/\(parts[3])")
            }
            return html(ViewerPages.viewer(job: job.name, index: index))
        case "api" where parts.count == 5 && parts[1] == "jobs" && parts[3] == "items":
            guard let job = try queue.jobs().first(where: { $0.name == parts[2] }), let index = Int(parts[4]),
                let found = try queue.item(jobID: job.id, index: index)
            else { return apiError(404, "no item \(parts[2])/\(parts[4])") }
            return json(try view(job, found.row, queue))
        case "api" where parts.count == 3 && parts[1] == "jobs":
            guard let job = try queue.jobs().first(where: { $0.name == parts[2] }) else { return apiError(404, "no job \(parts[2])") }
            return json(try QueueDocuments.status(queue, job: job, states: []))
        case "assets" where parts.count == 2:
            return WebAssets.response(parts[1]) ?? notFound("no asset \(parts[1])")
        case "jobs" where parts.count == 3 && parts[2] == "compare":
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }) else { return notFound("no job \(parts[1])") }
            let chosen = (query["items"] ?? "").split(separator: ",").compactMap { Int($0) }.prefix(4)
            var shown: [(row: ItemRow, caption: [(String, String)], image: String?)] = []
            for index in chosen {
                guard let found = try queue.item(jobID: job.id, index: index) else { return notFound("no item \(job.name)/\(index)") }
                let caption = Self.parameters(found.row).map { ($0.0, JobGrid.shown($0.1)) }
                shown.append((found.row, caption, found.outputs.isEmpty ? nil : "/files/\(ServePages.segment(job.name))/\(index)/0"))
            }
            return html(ViewerPages.compare(job: job, items: shown))
        case "jobs" where parts.count == 3 && parts[2] == "page-workflow.json":
            // A job queued from ComfyUI's page: the page's own workflow, to open there again.
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }), let page = try queue.settings(of: job).pageWorkflow else {
                return notFound("no ComfyUI workflow kept with \(parts[1])")
            }
            return HTTPResponse(
                status: 200, body: Array(page.serialized(pretty: true).utf8),
                headers: [("Cache-Control", "no-store"), ("Content-Disposition", "attachment; filename=\"\(ServePages.segment(job.name)).json\"")])
        case "jobs" where parts.count == 4 && parts[3] == "workflow.json":
            // The graph the item was submitted as: the job's workflow with the item's parameters.
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }), let index = Int(parts[2]),
                let found = try queue.item(jobID: job.id, index: index), let stored = try queue.definition(jobID: job.id)
            else { return notFound("no item \(parts[1])/\(parts[2])") }
            let graph = try Workflow(json: JSONValue(parsing: stored.workflow))
            let settings = try JobSettings(json: JSONValue(parsing: stored.spec))
            let applied = graph.applying(try JSONValue(parsing: found.row.parameters), addresses: settings.addresses)
            return HTTPResponse(status: 200, body: Array(applied.json.serialized(pretty: true).utf8), headers: [("Cache-Control", "no-store")])
        case "jobs" where parts.count == 2 || parts.count == 3:
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }) else { return notFound("no job \(parts[1])") }
            if parts.count == 2 {
                // One page of a large job at a time (`?page=N`, from 1): what is sent and built
                // does not grow with the job.
                let page = min(max(1, query["page"].flatMap { Int($0) } ?? 1), ReportPages.count(job))
                let range = ReportPages.range(page)
                let items = try queue.items(jobID: job.id, indices: range).map { ($0, Self.parameters($0)) }
                var images: [Int: String] = [:]
                for (index, paths) in try queue.outputs(jobID: job.id, indices: range) where !paths.isEmpty {
                    images[index] = "/thumbs/\(ServePages.segment(job.name))/\(index)/0"
                }
                let settings = try queue.settings(of: job)
                let starred = settings.followups.isEmpty ? 0 : try queue.rated(jobID: job.id, .starred).count
                return html(
                    ServePages.grid(
                        job: job, items: items, matrixAxes: settings.matrixAxes, outputs: images, held: try queue.held()[job.id],
                        filter: query.filter { !$0.value.isEmpty && !["token", "page", "show"].contains($0.key) }, page: page,
                        show: query["show"].flatMap(ServePages.Show.init(rawValue:)), followups: settings.followups.map(\.name), starred: starred))
            }
            guard let index = Int(parts[2]), let found = try queue.item(jobID: job.id, index: index) else {
                return notFound("no item \(parts[1])/\(parts[2])")
            }
            let base = "\(ServePages.segment(job.name))/\(index)"
            let images = found.outputs.indices.map { "/files/\(base)/\($0)" }
            var links = [("workflow", "/jobs/\(base)/workflow.json")] + found.outputs.indices.map { ("sidecar \($0 + 1)", "/sidecars/\(base)/\($0)") }
            links += try followUpLinks(job, index: index, queue)
            if try queue.settings(of: job).pageWorkflow != nil { links.append(("ComfyUI workflow (as the page had it)", "/jobs/\(ServePages.segment(job.name))/page-workflow.json")) }
            return html(ServePages.item(job: job.name, row: found.row, parameters: Self.parameters(found.row), images: images, timings: found.timings, links: links))
        case "files" where parts.count == 4, "thumbs" where parts.count == 4, "sidecars" where parts.count == 4:
            // Only files recorded as an item's outputs, by their number: no path from the URL
            // ever reaches the file system. `thumbs`: its thumbnail when there is one; `sidecars`: its sidecar.
            guard let job = try queue.jobs().first(where: { $0.name == parts[1] }), let index = Int(parts[2]), let number = Int(parts[3]),
                let outputs = try queue.item(jobID: job.id, index: index)?.outputs, outputs.indices.contains(number)
            else { return notFound("no such file") }
            let thumbnail = Thumbnail.path(for: outputs[number])
            let path: String
            switch parts[0] {
            case "thumbs" where FileManager.default.fileExists(atPath: thumbnail): path = thumbnail
            case "sidecars": path = (outputs[number] as NSString).deletingPathExtension + ".json"
            default: path = outputs[number]
            }
            guard let data = FileManager.default.contents(atPath: path) else { return notFound("no such file") }
            return HTTPResponse(status: 200, contentType: InputFile.mediaType(path), body: [UInt8](data), headers: [("Cache-Control", "max-age=3600")])
        default:
            return notFound("no page \(path)")
        }
    }

    /// The viewer's document for one item, from its page of the grid (what varies, where each
    /// key goes, the neighbours to preload).
    func view(_ job: JobSummary, _ row: ItemRow, _ queue: Queue) throws -> JSONValue {
        let range = ReportPages.range(ReportPages.page(of: row.index))
        let items = try queue.items(jobID: job.id, indices: range)
        let grid = JobGrid(items: items.map { JobGrid.Item(index: $0.index, parameters: Self.parameters($0)) }, matrixAxes: try queue.settings(of: job).matrixAxes)
        return ViewerPages.document(job: job, row: row, grid: grid, range: range, outputs: try queue.outputs(jobID: job.id, indices: range), served: true)
    }

    private func json(_ value: JSONValue, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", body: Array(value.serialized().utf8), headers: [("Cache-Control", "no-store")])
    }

    /// An API error: `{"error": "…"}`, one line.
    private func apiError(_ status: Int, _ message: String) -> HTTPResponse { json(["error": .string(message)], status: status) }

    /// Follow-ups both ways: the item an item of a follow-up came from, and the follow-ups'
    /// items that came from this one (an item each when the follow-up has one per chosen item,
    /// else the follow-up job).
    func followUpLinks(_ job: JobSummary, index: Int, _ queue: Queue) throws -> [(String, String)] {
        var links: [(String, String)] = []
        let jobs = try queue.jobs()
        if let from = try queue.settings(of: job).from {
            if from.items.count == job.total, from.items.indices.contains(index) {
                links.append(("from \(from.job)/\(from.items[index])", "/jobs/\(ServePages.segment(from.job))/\(from.items[index])"))
            } else {
                links.append(("from \(from.job)", "/jobs/\(ServePages.segment(from.job))"))
            }
        }
        for other in jobs where other.id != job.id {
            guard let from = try? queue.settings(of: other).from, from.job == job.name, let position = from.items.firstIndex(of: index) else {
                continue  // (a job whose settings cannot be read says so on its own page)
            }
            if from.items.count == other.total {
                links.append(("followed up by \(other.name)/\(position)", "/jobs/\(ServePages.segment(other.name))/\(position)"))
            } else {
                links.append(("followed up by \(other.name)", "/jobs/\(ServePages.segment(other.name))"))
            }
        }
        return links
    }

    package static func parameters(_ row: ItemRow) -> JSONObject {
        (try? JSONValue(parsing: row.parameters))?.objectValue ?? JSONObject()
    }

    /// Server-Sent Events: a `changed` event whenever the queue changes (another process's
    /// commit included), a comment every 15 s to keep proxies from closing it. Ends when the
    /// client goes away, the server stops, or the queue cannot be read (the page reconnects).
    private func stream(_ connection: ClientConnection, cors: [(String, String)]) -> HTTPServer.Reply {
        let allow = cors.map { "\($0.0): \($0.1)\r\n" }.joined()
        connection.send(Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\(allow)\r\nretry: 1000\n\n".utf8))
        var seen = changes.subscribe()
        defer { changes.unsubscribe() }
        var quiet = ContinuousClock.now
        while !connection.isClosed {
            guard let now = changes.wait(after: seen, timeout: 1) else { return .tookOver }
            if now != seen {
                connection.send(Array("data: changed\n\n".utf8))
                seen = now
                quiet = .now
            } else if ContinuousClock.now - quiet > .seconds(15) {
                connection.send(Array(": still here\n\n".utf8))
                quiet = .now
            }
        }
        return .tookOver
    }
}
