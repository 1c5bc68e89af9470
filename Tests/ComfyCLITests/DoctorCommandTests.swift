import ComfyCLI
import ComfyCore
import Foundation
import TestSupport
import Testing

@Suite struct DoctorCommandTests {
    static let script = Paths.packageRoot.appendingPathComponent("Tests/ComfyClientTests/Support/fake_comfyui.py").path

    @Test func binaryJSONReportAndExitCodes() async throws {
        let server = try await PythonServer.start(script: Self.script)
        defer { server.stop() }
        let good = try await runBinary(["doctor", "--server", "http://127.0.0.1:\(server.port)", "--server", "127.0.0.1:1", "--json"])
        #expect(good.status == .failure)  // the second server is down
        let report = try JSONValue(parsing: good.stdout)
        #expect(report["schema"] == 1)
        #expect(report["servers"]?.arrayValue?.map { $0["ok"] } == [true, false])
        #expect(report["servers"]?.arrayValue?.last?["checks"]?.arrayValue?.first?["hint"]
            == "is ComfyUI running, and listening on this address? (--listen)")

        let text = try await runBinary(["doctor", "--server", "http://127.0.0.1:\(server.port)"])
        #expect(text.status == .success)
        #expect(text.stdout.contains("✓ websocket"))
        #expect(!text.stdout.contains("\u{1B}["))  // no colour when not a terminal
    }

    @Test func badServerValueIsAUsageError() async {
        let run = await comfyq("doctor", "--server", "ftp://x")
        #expect(run.status == .usage)
        #expect(run.stderr.hasPrefix("Error: --server must be a server name from the servers file or an http:// or https:// URL, got 'ftp://x'"))
    }
}
