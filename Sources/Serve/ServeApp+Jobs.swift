import ComfyCore
import Dispatch
import Foundation
import HTTPServer
import QueueStore
import Synchronization

/// The job API: `POST /api/jobs` adds a job sent whole (as `comfyq add` adds a file, pre-flight
/// included), `POST /api/inspect` tells a workflow's inputs by their addresses (as `comfyq
/// inspect`). Both are controls: the same rules as cancel and retry (`control`).
extension ServeApp {
    /// `{"job": NAME, "items": N, "notes": […]}`, or 400 `{"error": …, "problems": [one line each]}`.
    func addJob(_ request: HTTPRequest, setCookie: [(String, String)]) -> HTTPResponse {
        guard let document = try? JSONValue(parsing: request.body), let fields = document.objectValue else {
            return refused(400, ["the body must be a job: a JSON object with its name, workflow (API format) and sweeps"], setCookie: setCookie)
        }
        let databasePath = databasePath
        let intake = intake
        let result = Self.waitFor { try await intake.addJob(fields, databasePath: databasePath) }
        switch result {
        case .success(let added):
            let body: JSONValue = ["job": .string(added.name), "items": .int(added.items), "notes": .array(added.notes.map { .string($0) })]
            return HTTPResponse(status: 200, body: Array(body.serialized().utf8), headers: setCookie + [("Cache-Control", "no-store")])
        case .failure(let refusal as JobRefused):
            return refused(400, refusal.problems, setCookie: setCookie)
        case .failure(let error):
            return refused(500, ["\(error)"], setCookie: setCookie)
        }
    }

    /// `{"workflow": {…API format…}}` → the inspection `comfyq inspect --json` prints: every
    /// node's inputs with their values and the addresses a job sets them by, and the seed.
    func inspect(_ request: HTTPRequest) -> HTTPResponse {
        guard let document = try? JSONValue(parsing: request.body), let graph = document["workflow"] else {
            return refused(400, ["the body must be {\"workflow\": the workflow in the API format}"], setCookie: [])
        }
        do {
            let workflow = try Workflow(json: graph)
            return HTTPResponse(status: 200, body: Array(WorkflowInspection(workflow: workflow).json.serialized().utf8), headers: [("Cache-Control", "no-store")])
        } catch {
            return refused(400, ["workflow: \(error)"], setCookie: [])
        }
    }

    func refused(_ status: Int, _ problems: [String], setCookie: [(String, String)]) -> HTTPResponse {
        let body: JSONValue = ["error": .string(problems.first ?? "refused"), "problems": .array(problems.map { .string($0) })]
        return HTTPResponse(status: status, body: Array(body.serialized().utf8), headers: setCookie + [("Cache-Control", "no-store")])
    }

    /// Runs `work` (reading servers over the network) for the connection's thread, which the
    /// HTTP server gives each connection and which has nothing else to do meanwhile, and waits
    /// for its result. The task is waited for here: nothing outlives the request.
    static func waitFor<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        Task.detached {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await work()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }
}
