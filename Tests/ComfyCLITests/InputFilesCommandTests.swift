import ComfyCore
import Foundation
import InputFiles
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Input files through the real binary: a batch over a folder killed with SIGKILL and run again,
/// bad input lines, and `validate --server` against a server's upload limit.
@Suite(.serialized) struct InputFilesCommandTests {
    static let img2img = Support.path("../../jobs/workflows/img2img.json", besides: #filePath)

    /// `count` PNGs of different sizes in `folder`.
    static func writeImages(_ folder: String, count: Int, side: Int = 48) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for index in 0..<count {
            let (width, height) = (side + 8 * index, side)
            // Noise, so the PNG does not compress below the size a limit test needs.
            var state = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
            let rgba = [UInt8]((0..<(width * height * 4)).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 33)
            })
            try Data(PNGImage(width: width, height: height, rgba: rgba).encoded()).write(to: URL(fileURLWithPath: "\(folder)/img\(index).png"))
        }
    }

    static func stats(port: Int) async -> JSONValue {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/sim/stats")!)
        request.httpMethod = "POST"
        guard let (data, _) = try? await URLSession(configuration: .ephemeral).data(for: request),
            let json = try? JSONValue(parsing: Array(data))
        else { return "no answer" }
        return json
    }

    @Test func killedMidBatchAndRunAgainNothingIsUploadedOrRunTwice() async throws {
        let night = try Night("inputs-kill")
        let port = try night.writeServers(fields: "concurrency: 2, keep_running: true")
        try Self.writeImages(night.path("photos"), count: 3)
        let job = night.path("folder.json")
        try """
            {name: "folder", workflow: "\(Self.img2img)", set: {"KSampler.steps": 6},
             matrix: {"Load Image.image": {files: "photos/*.png"}, "KSampler.denoise": [0.4, 0.7]},
             output: {folder: "\(night.path("out"))", name: "{input}_{denoise}"}}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        #expect(try await runBinary(["add", job], environment: night.environment).status == .success)

        // Killed once every image is on the server (its inputs event is out after the upload is recorded).
        let first = try night.startRun(["--json-events"])
        try await eventually("all three images uploaded", timeout: 60, describe: { night.output("run") }) {
            night.output("run").components(separatedBy: "\"event\":\"inputs\"").count - 1 >= 5 ? true : nil
        }
        kill(first.processIdentifier, SIGKILL)
        _ = try await night.wait(first)
        let before = await Self.stats(port: port)
        #expect(before["upload_requests"] == 3, "\(before)")

        // The server outlived the run (its pid file is adopted); the second run finishes the batch.
        let second = try night.startRun(["--json-events"], tag: "run2")
        #expect(try await night.wait(second) == 0, "\(night.output("run2"))")
        let after = await Self.stats(port: port)
        #expect(after["upload_requests"] == 3, "no file uploaded twice: \(after)")
        #expect(after["uploads"] == 3)
        #expect(night.outputs().count == 6, "\(night.outputs())")
        #expect(night.simulatorOutputs() == 6, "nothing ran twice")
        _ = try await runBinary(["servers", "stop", "local"], environment: night.environment)
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var value: String
        var message: String
        var testDescription: String { message }
    }

    @Test(arguments: [
        Bad(value: #"{files: "photos/*.jpg"}"#, message: "photos/*.jpg matches no file"),
        Bad(value: #"{file: "photos/none.png"}"#, message: "no such file: "),
        Bad(value: #"{file: "notes.txt"}"#, message: "not an image file this input takes"),
        Bad(value: #"{file: "fake.png"}"#, message: "its content is not PNG"),
    ])
    func badInputFilesAreOneLineAndAddNothing(_ bad: Bad) async throws {
        let night = try Night("inputs-bad")
        try Self.writeImages(night.path("photos"), count: 1)
        try "not an image".write(toFile: night.path("notes.txt"), atomically: true, encoding: .utf8)
        try Data([0xFF, 0xD8, 0xFF, 0xE0]).write(to: URL(fileURLWithPath: night.path("fake.png")))
        let job = night.path("bad.json")
        try #"{workflow: "\#(Self.img2img)", set: {"Load Image.image": \#(bad.value)}}"#.write(toFile: job, atomically: true, encoding: .utf8)
        for command in ["validate", "add"] {
            let run = try await runBinary([command, job], environment: night.environment)
            #expect(run.status == .dataError, "\(command): \(run.stderr)")
            let lines = run.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains(job) && lines[0].contains(#"set["Load Image.image"]"#) && lines[0].contains(bad.message), "\(run.stderr)")
        }
        let status = try await Night.statusJSON(night.db)
        #expect(status["jobs"]?.arrayValue?.isEmpty ?? true, "nothing added")
    }

    @Test func validateAgainstAServerRefusesFilesLargerThanItTakes() async throws {
        let night = try Night("inputs-limit")
        try Self.writeImages(night.path("photos"), count: 2, side: 64)
        let port = try Ports.outsideEphemeralRange(1)
        let simulator = try startBinary(["simulate", "--port", String(port), "--output", night.path("sim"), "--max-upload-size", "0.005"])
        defer {
            simulator.terminate()
            simulator.waitUntilExit()
        }
        _ = try await eventually("the simulator to answer") { await Self.stats(port: port)["completed"] != nil ? true : nil }
        let job = night.path("big.json")
        try #"{workflow: "\#(Self.img2img)", zip: {"Load Image.image": {files: "photos/*.png"}}}"#.write(toFile: job, atomically: true, encoding: .utf8)
        let offline = try await runBinary(["validate", job], environment: night.environment)
        #expect(offline.status == .success, "without a server the size is not known: \(offline.stderr)")
        let checked = try await runBinary(["validate", "--server", "127.0.0.1:\(port)", job], environment: night.environment)
        #expect(checked.status == .dataError)
        let lines = checked.stderr.split(separator: "\n")
        #expect(lines.count == 2, "\(checked.stderr)")
        #expect(lines.allSatisfy { $0.contains("max_upload_size (5242 bytes)") && $0.contains("bytes, more than http://127.0.0.1:\(port)") }, "\(checked.stderr)")
    }
}
