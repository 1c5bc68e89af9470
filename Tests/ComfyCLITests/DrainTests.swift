import ComfyCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `comfyq drain` and serve's drain button: a run in another process finishes what it has in
/// flight, submits nothing new, and ends, leaving the rest queued.
@Suite(.serialized) struct DrainTests {
    @Test func drainFromTheCommandLineLeavesTheRestQueued() async throws {
        let night = try Night("drain")
        try night.writeServers()
        let job = try night.writeJob(count: 12, steps: 10)
        // No run yet: nothing to drain, said in one line.
        let none = try await runBinary(["drain"], environment: night.environment)
        #expect(none.status == .failure && none.stderr == "Error: no run is going on this queue: nothing to drain\n", "\(none.stderr)")
        let run = try night.startRun([job])
        _ = try await eventually("an item done", describe: { night.output("run") }) { try await night.done() >= 1 ? true : nil }
        let drain = try await runBinary(["drain"], environment: night.environment)
        #expect(drain.status == .success && drain.stdout == "asked 1 run to drain\n", "\(drain.stdout)\(drain.stderr)")
        // As after Ctrl-C once: the run ends with 1, saying the rest is still queued.
        let exit = try await night.wait(run)
        #expect(exit == 1, "\(night.output("run"))")
        #expect(night.output("run").contains("draining (comfyq drain): finishing"), "\(night.output("run"))")
        #expect(night.output("run").contains("drained; the rest is still queued"), "\(night.output("run"))")
        let counts = try await Night.statusJSON(night.db)["jobs"]?.arrayValue?.first?["counts"]
        let done = counts?["done"]?.numberValue?.int ?? 0
        #expect(done >= 1 && done < 12 && counts?["pending"]?.numberValue?.int == 12 - done && counts?["running"] == 0, "\(String(describing: counts))")
        #expect(night.simulatorOutputs() == done, "what was in flight finished; nothing else ran")
    }

    @Test func drainFromThePage() async throws {
        let night = try Night("drain-page")
        try night.writeServers()
        let job = try night.writeJob(count: 12, steps: 10)
        let port = try Ports.outsideEphemeralRange(1)
        let run = try night.startRun([job, "--serve", "127.0.0.1:\(port)"])
        _ = try await eventually("an item done", describe: { night.output("run") }) { try await night.done() >= 1 ? true : nil }
        let base = "http://127.0.0.1:\(port)"
        let overview = try await ServeCommandTests.Served.get(base + "/")
        #expect(overview.body.contains("<form method=\"post\" action=\"/drain\">"), "\(overview.body.prefix(600))")
        var request = URLRequest(url: URL(string: base + "/drain")!)
        request.httpMethod = "POST"
        request.setValue(base, forHTTPHeaderField: "Origin")
        let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        let (_, response) = try await session.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 303)
        #expect((response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Location") == "/?drained=1")
        let exit = try await night.wait(run)
        #expect(exit == 1, "\(night.output("run"))")
        let done = try await night.done()
        #expect(done < 12, "the run drained")
    }
}
