import ComfyClient
import ComfyCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestSupport
import Testing

/// The connection shell against the ComfyUI look-alike: drops, resyncs, lost prompts, polling.
@Suite struct ServerConnectionTests {
    static func post(_ port: Int, _ path: String, _ body: String = "{}") async throws {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        _ = try await isolatedSession().data(for: request)
    }

    /// Waits for the first event that matches, failing after `seconds`.
    static func next(
        _ events: AsyncStream<ConnectionEvent>, within seconds: Double = 10, where match: @escaping @Sendable (ConnectionEvent) -> Bool
    ) async -> ConnectionEvent? {
        await within(seconds) {
            for await event in events where match(event) { return event }
            return nil
        }
    }

    @Sendable static func isDone(_ event: ConnectionEvent) -> Bool {
        if case .progress(let update) = event { return update.snapshot.phase == .done }
        return false
    }

    static func fastPolicy(polling: Bool) -> ConnectionSupervisor.Policy {
        var policy = ConnectionSupervisor.Policy()
        policy.initialDelay = 0.05
        policy.silenceBeforePolling = polling ? 0.2 : 3600
        policy.pollInterval = polling ? 0.2 : 3600
        return policy
    }

    static func setUp(_ arguments: [String], polling: Bool = false) async throws -> (PythonServer, ComfyAPI, ServerConnection) {
        let server = try await PythonServer.start(script: ComfyAPITests.script, arguments: arguments)
        let api = localAPI(server.port)
        let connection = ServerConnection(api: api, policy: fastPolicy(polling: polling))
        await connection.start()
        return (server, api, connection)
    }

    @Test func completionMissedWhileDisconnectedIsFoundOnResync() async throws {
        let (server, api, connection) = try await Self.setUp(["--hold-history"])
        defer { server.stop() }
        #expect(await Self.next(connection.events) { $0 == .connected(attempt: 1) } != nil)
        _ = try await api.submit(ComfyAPITests.workflow, promptID: "p-1", clientID: connection.clientID)
        await connection.track("p-1", plan: PromptPlan(ComfyAPITests.workflow))

        try await Self.post(server.port, "/sim/drop")
        try await Self.post(server.port, "/sim/finish", #"{"prompt_id": "p-1"}"#)
        let done = await Self.next(connection.events, where: Self.isDone)
        guard case .progress(let update)? = done else {
            Issue.record("no completion after the reconnect")
            return
        }
        #expect(update.snapshot.promptID == "p-1")
        #expect(update.transition?.to == .done)
        await connection.stop()
    }

    @Test func promptLostInARestartIsReported() async throws {
        let (server, api, connection) = try await Self.setUp(["--hold-history"])
        defer { server.stop() }
        #expect(await Self.next(connection.events) { $0 == .connected(attempt: 1) } != nil)
        _ = try await api.submit(ComfyAPITests.workflow, promptID: "p-2", clientID: connection.clientID)
        await connection.track("p-2", plan: PromptPlan(ComfyAPITests.workflow))
        await connection.confirm("p-2")
        try await Self.post(server.port, "/sim/forget", #"{"prompt_id": "p-2"}"#)
        try await Self.post(server.port, "/sim/drop")
        #expect(await Self.next(connection.events) { $0 == .lost(promptID: "p-2") } != nil)
        #expect(await connection.snapshot(of: "p-2") == nil)
        await connection.stop()
    }

    /// A prompt tracked while its POST is still on the way is in neither /queue nor /history:
    /// a resync then must not call it lost (that would run it twice).
    @Test func unconfirmedPromptIsNeverLost() async throws {
        let (server, _, connection) = try await Self.setUp(["--hold-history"])
        defer { server.stop() }
        #expect(await Self.next(connection.events) { $0 == .connected(attempt: 1) } != nil)
        await connection.track("not-posted-yet", plan: PromptPlan(ComfyAPITests.workflow))
        try await Self.post(server.port, "/sim/drop")
        #expect(await Self.next(connection.events, within: 1.5) { $0 == .lost(promptID: "not-posted-yet") } == nil)
        #expect(await connection.snapshot(of: "not-posted-yet") != nil)
        await connection.stop()
    }

    @Test func silentPromptIsCaughtByPolling() async throws {
        let (server, api, connection) = try await Self.setUp(["--hold-history"], polling: true)
        defer { server.stop() }
        _ = try await api.submit(ComfyAPITests.workflow, promptID: "p-3", clientID: connection.clientID)
        await connection.track("p-3", plan: PromptPlan(ComfyAPITests.workflow))
        try await Self.post(server.port, "/sim/finish", #"{"prompt_id": "p-3"}"#)
        #expect(await Self.next(connection.events, where: Self.isDone) != nil)
        await connection.stop()
    }

    @Test func deadServerIsRetriedWithBackoff() async throws {
        let api = ComfyAPI(baseURL: URL(string: "http://127.0.0.1:1")!, timeout: 2)
        let connection = ServerConnection(api: api, policy: Self.fastPolicy(polling: false))
        await connection.start()
        let first = await Self.next(connection.events) { if case .disconnected = $0 { true } else { false } }
        guard case .disconnected(let reason, let retry)? = first else {
            Issue.record("no disconnect reported")
            return
        }
        #expect(reason.contains("connection refused"))
        #expect(retry > 0, "\(reason)")
        await connection.stop()
    }
}
