import ComfyCLI
import ComfyCore
import Foundation
import HTTPServer
import InputFiles
import QueueStore
import Serve
import Runner
import Simulator
import Workloads
#if canImport(Glibc)
import Glibc
#endif

/// `comfyq serve`: the overview with 100,000 items queued, a 1,000-cell grid, a thumbnail of a
/// 1024 × 1024 PNG, how soon a queue change reaches an open event stream, and what 200 open
/// streams cost a run that writes the queue they watch.
///
///     comfyq-bench serve
enum ServeBenchmark {
    static func run() async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-serve-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let workflow = Workloads.txt2img(steps: 20).json.serialized()
        let loader = JobLoader(readFile: { _ in workflow }, fileExists: { _ in true })

        // Overview at 100,000 queued items, and a 40 × 25 grid.
        let path = directory.appendingPathComponent("queue.db").path
        let queue = try! Queue(path: path)
        let big = try! loader.load(text: #"{name: "big", workflow: "w.json", seeds: {start: 1, count: 100000}}"#, path: "big.json")
        try! queue.add(big, items: big.expand(random: { 0 }), now: 0)
        let cfgs = (0..<25).map { "\(Double($0) / 2 + 3)" }.joined(separator: ", ")
        let grid = try! loader.load(
            text: #"{name: "grid", workflow: "w.json", matrix: {"KSampler.steps": [\#((1...40).map(String.init).joined(separator: ", "))], "KSampler.cfg": [\#(cfgs)]}}"#,
            path: "grid.json")
        try! queue.add(grid, items: grid.expand(random: { 0 }), now: 0)
        let app = ServeApp(databasePath: path, token: nil, intake: NoIntake())
        var size = 0
        let overview = measure(rounds: 7) { size = (try? app.route("/", queue))?.body.count ?? 0 }
        print("serve: overview with 100,000 items queued: \(format(overview * 1000, 1)) ms (\(size / 1024) KB)  [target ≤ 20 ms]")
        let gridTime = measure(rounds: 7) { size = (try? app.route("/jobs/grid", queue))?.body.count ?? 0 }
        print("serve: a 1,000-cell grid page: \(format(gridTime * 1000, 1)) ms (\(size / 1024) KB)  [target ≤ 100 ms]")

        // A thumbnail of a 1024 × 1024 PNG: noise (the worst case: nothing compresses), and a
        // smooth picture, as generated images mostly are.
        // Noise as ComfyUI writes it (RGB, zlib level 4: stored, nothing compresses), and with an
        // opaque alpha channel (which zlib does compress, so every byte is Huffman-coded).
        var decodedNoise = try! PNGImage(decoding: PNG.noise(width: 1024, height: 1024, seed: 7))
        let noise = decodedNoise.encoded(level: 4)
        decodedNoise.hadAlpha = true
        let noiseWithAlpha = decodedNoise.encoded(level: 4)
        var smooth = [UInt8](repeating: 255, count: 1024 * 1024 * 4)
        for y in 0..<1024 {
            for x in 0..<1024 {
                let index = (y * 1024 + x) * 4
                smooth[index] = UInt8(x / 4)
                smooth[index + 1] = UInt8(y / 4)
                smooth[index + 2] = UInt8((x + y) / 8)
            }
        }
        let picture = PNGImage(width: 1024, height: 1024, rgba: smooth).encoded(level: 4)
        for (name, image) in [("noise (RGB)", noise), ("noise (RGBA)", noiseWithAlpha), ("a smooth picture", picture)] {
            let thumbnail = measure(rounds: 7) { _ = try? Thumbnail.make(image) }
            let decoded = try! PNGImage(decoding: image)
            let decode = measure(rounds: 7) { _ = try? PNGImage(decoding: image) }
            let scale = measure(rounds: 7) { _ = Thumbnail.scaled(decoded, longSide: 256) }
            print(
                "serve: thumbnail of a 1024 × 1024 PNG of \(name) (\(image.count / 1024) KB; decode, downscale to 256, encode): \(format(thumbnail * 1000, 1)) ms (decode \(format(decode * 1000, 1)), downscale \(format(scale * 1000, 1)))  [target ≤ 30 ms]"
            )
        }

        // A queue change → the event on an open stream (the stream looks every 250 ms).
        guard let server = try? HTTPServer(host: "127.0.0.1", port: 0, name: "bench-serve") else { return }
        server.start { request, connection, _ in app.handle(request, connection) }
        defer { server.stop() }
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(server.port).bigEndian)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let request = Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = buffer.withUnsafeMutableBytes { read(socket, $0.baseAddress, 4096) }  // headers and retry
        let writer = try! Queue(path: path)
        var latencies: [Double] = []
        for round in 0..<40 {
            try? await Task.sleep(for: .milliseconds(50 + (round % 7) * 37))  // land at different points of the stream's 250 ms look
            let start = ContinuousClock.now
            _ = try? writer.cancel(.item(job: 2, index: round), now: 0)
            var text = ""
            while !text.contains("data: changed") {
                let got = buffer.withUnsafeMutableBytes { read(socket, $0.baseAddress, 4096) }
                if got <= 0 { break }
                text += String(decoding: buffer[0..<got], as: UTF8.self)
            }
            latencies.append((ContinuousClock.now - start).seconds)
        }
        latencies.sort()
        print(
            "serve: a queue change reaching an open event stream: median \(format(latencies[latencies.count / 2] * 1000, 0)) ms, p99 \(format(latencies[latencies.count * 99 / 100] * 1000, 0)) ms (40 changes)  [target: within 1 s]"
        )

        await streamsBesideARun(directory)
    }

    /// The runner's prompts per second at zero simulated time, alone and with `comfyq serve`
    /// on its queue holding 200 open event streams (in the same process: the harder case),
    /// rounds interleaved so the machine's noise falls on both.
    static func streamsBesideARun(_ directory: URL) async {
        var alone: [Double] = []
        var watched: [Double] = []
        for round in 0..<4 {
            for withStreams in [false, true] {
                var options = SimulatorOptions(outputDirectory: directory.appendingPathComponent("sim-\(round)-\(withStreams)").path)
                options.port = 0
                options.instant()
                let simulator = try! Simulator(options: options)
                let path = benchQueue(directory, count: 1_000, name: "streams-\(round)-\(withStreams)")
                var server: HTTPServer?
                var sockets: [Int32] = []
                if withStreams {
                    let app = ServeApp(databasePath: path, token: nil, intake: NoIntake())
                    server = try? HTTPServer(host: "127.0.0.1", port: 0, name: "bench-serve", maximumBody: 1 << 20, idleTimeout: .seconds(60))
                    server?.start { request, connection, _ in app.handle(request, connection) }
                    for _ in 0..<200 {
                        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                        var address = sockaddr_in()
                        address.sin_family = sa_family_t(AF_INET)
                        address.sin_addr.s_addr = inet_addr("127.0.0.1")
                        address.sin_port = in_port_t(UInt16(server!.port).bigEndian)
                        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                        _ = Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
                        sockets.append(socket)
                    }
                    // Every stream open (its headers read) before the run starts.
                    var buffer = [UInt8](repeating: 0, count: 512)
                    for socket in sockets { _ = buffer.withUnsafeMutableBytes { read(socket, $0.baseAddress, 512) } }
                }
                var runnerOptions = RunnerOptions(servers: [URL(string: simulator.url)!])
                runnerOptions.concurrency = 4
                let runner = try! Runner(queuePath: path, options: runnerOptions)
                let start = ContinuousClock.now
                let summary = await runner.run()
                let rate = Double(summary.done) / seconds(since: start)
                if withStreams { watched.append(rate) } else { alone.append(rate) }
                for socket in sockets { close(socket) }
                server?.stop()
                simulator.stop()
            }
        }
        let a = median(alone)
        let b = median(watched)
        print(
            "serve: the runner (1,000 prompts, zero simulated time, concurrency 4) alone \(format(a, 0)) prompts/s, with 200 open event streams on its queue \(format(b, 0)) prompts/s: \(format((b / a - 1) * 100, 1)) % (medians of 4 interleaved rounds)  [target: within 5 %]"
        )
    }
}

/// The benchmarks add no jobs through serve.
struct NoIntake: JobIntake {
    struct Refused: Error {}
    func addFollowUp(file: String, from job: String, queue: Queue) throws -> [(name: String, items: Int)] { throw Refused() }
    func addJob(_ document: JSONObject, databasePath: String) async throws -> AddedJob { throw Refused() }
}
