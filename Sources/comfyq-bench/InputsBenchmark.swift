import ComfyClient
import ComfyCore
import Foundation
import InputFiles
import QueueStore
import Simulator
import Workloads

/// Input files: uploads to a local simulator (MB/s for 1 MB and 20 MB files), SHA-256 of a file
/// (OpenSSL), and `add` of a job over 10,000 files (which reads no content).
///
///     comfyq-bench inputs
enum InputsBenchmark {
    static func run() async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-inputs-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        // Uploads: the same path a submit takes (multipart through URLSession, the simulator
        // writing the file); a different content each round, so every upload is written.
        var options = SimulatorOptions(outputDirectory: directory.appendingPathComponent("sim").path)
        options.port = 0
        options.instant()
        guard let simulator = try? Simulator(options: options) else {
            print("inputs: skipped: the simulator did not start")
            return
        }
        defer { simulator.stop() }
        let api = ComfyAPI(baseURL: URL(string: simulator.url)!, timeout: 60)
        for megabytes in [1, 20] {
            var bytes = [UInt8](repeating: 0, count: megabytes << 20)
            var state: UInt64 = 42
            for index in stride(from: 0, to: bytes.count, by: 8) {
                state = state &* 6_364_136_223_846_793_005 &+ 1
                withUnsafeBytes(of: state) { for offset in 0..<min(8, bytes.count - index) { bytes[index + offset] = $0[offset] } }
            }
            var samples: [Double] = []
            for round in 0..<(megabytes == 1 ? 15 : 5) {
                bytes[0] = UInt8(truncatingIfNeeded: round)
                let start = ContinuousClock.now
                do {
                    _ = try await api.upload(bytes, name: "bench-\(megabytes)-\(round).bin", subfolder: "comfyq")
                } catch {
                    print("inputs: upload failed: \(error)")
                    return
                }
                samples.append((ContinuousClock.now - start).seconds)
            }
            let median = samples.sorted()[samples.count / 2]
            print("inputs: upload of a \(megabytes) MB file to a local simulator: \(format(Double(megabytes) / median, 0)) MB/s (median of \(samples.count), \(format(median * 1000, 1)) ms each)")
        }

        // Hashing: a 256 MB file, read in 1 MB pieces.
        let big = directory.appendingPathComponent("big.bin").path
        let chunk = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        FileManager.default.createFile(atPath: big, contents: nil)
        if let handle = FileHandle(forWritingAtPath: big) {
            for _ in 0..<256 { handle.write(chunk) }
            try? handle.close()
        }
        let hashSeconds = measure(rounds: 3) { _ = try? FileHash.sha256(of: big) }
        print("inputs: SHA-256 of a 256 MB file: \(format(256 / hashSeconds, 0)) MB/s  [target ≥ 500 MB/s]")

        // add over 10,000 files: glob, stat and 16 bytes of each, then one transaction.
        let photos = directory.appendingPathComponent("photos")
        try? FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 56))
        for index in 0..<10_000 { FileManager.default.createFile(atPath: photos.appendingPathComponent(String(format: "p%05d.png", index)).path, contents: png) }
        let workflow = Workflow(
            Workloads.txt2img().orderedNodes + [WorkflowNode(id: "10", classType: "LoadImage", title: "Load Image", inputs: ["image": "x.png"])]
        ).json.serialized()
        let loader = JobLoader(readFile: { _ in workflow }, fileExists: { _ in true }, files: LocalFiles.files)
        var rounds: [(load: Double, add: Double)] = []
        for round in 0..<3 {
            let start = ContinuousClock.now
            guard
                let spec = try? loader.load(
                    text: #"{name: "folder\#(round)", workflow: "w.json", matrix: {"Load Image.image": {files: "photos/*.png"}}}"#,
                    path: directory.appendingPathComponent("job.json").path)
            else {
                print("inputs: the 10,000-file job did not load")
                return
            }
            let loaded = ContinuousClock.now
            let queue = try! Queue(path: directory.appendingPathComponent("queue\(round).db").path)
            _ = try! queue.add(spec, items: spec.expand(random: { 0 }), now: Date().timeIntervalSince1970)
            rounds.append(((loaded - start).seconds, (ContinuousClock.now - loaded).seconds))
        }
        let median = rounds.sorted { $0.load + $0.add < $1.load + $1.add }[1]
        print(
            "inputs: add of a job over 10,000 files: \(format(median.load + median.add, 2)) s (loading and checking the files \(format(median.load, 2)) s, queueing \(format(median.add, 2)) s)  [target ≤ 2 s]"
        )
    }
}
