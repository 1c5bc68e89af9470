import ComfyCLI
import ComfyCore
import Foundation
import TestSupport
import Testing

@Suite struct SimulateCommandTests {
    /// The real binary: `comfyq simulate --port 0` prints its URL, `comfyq doctor` passes against
    /// it, and SIGINT stops it with exit 0.
    @Test func binaryServesUntilInterrupted() async throws {
        let output = TestFolder.root.appendingPathComponent("comfyq-sim-cli-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = Process()
        process.executableURL = Paths.binary
        process.environment = Hermetic.childEnvironment()
        process.arguments = ["simulate", "--port", "0", "--output", output, "--step-time", "1ms", "--load-time", "0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let exit = Task {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
                process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                do { try process.run() } catch { continuation.resume(throwing: error) }
            }
        }
        let text = try await firstLine(of: pipe.fileHandleForReading)
        #expect(text.hasPrefix("comfyq simulator listening on http://127.0.0.1:"))
        let url = String(text.split(separator: " ").last ?? "")
        let doctor = try await runBinary(["doctor", "--server", url])
        #expect(doctor.status == .success, "\(doctor.stdout)")
        kill(process.processIdentifier, SIGINT)
        #expect(try await exit.value == 0)
    }

    @Test(arguments: [("50ms", 0.05), ("1s", 1.0), ("1.5s", 1.5), ("0", 0.0), ("2m", 120.0), ("250us", 0.00025)])
    func durations(text: String, seconds: Double) {
        #expect(SimulateCommand.parseDuration(text).map { abs($0 - seconds) < 1e-12 } == true)
    }

    @Test(arguments: ["fast", "5", "-1s", "ms", ""])
    func notDurations(text: String) {
        #expect(SimulateCommand.parseDuration(text) == nil)
    }

    @Test func badDurationIsAUsageError() async {
        let run = await comfyq("simulate", "--step-time", "fast")
        #expect(run.status == .usage)
        #expect(run.stderr.hasPrefix("Error: --step-time must be a duration such as 50ms or 1.5s, got 'fast'"))
    }
}
