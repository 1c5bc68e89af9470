import ComfyCLI
import ComfyCore
import Foundation
import HTTPServer
import InputFiles
import QueueStore
import Simulator
import Workloads
#if canImport(Glibc)
import Glibc
#endif

/// `comfyq serve`: the overview with 100,000 items queued, a 1,000-cell grid, a thumbnail of a
/// 1024 × 1024 PNG, and how soon a queue change reaches an open event stream.
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
        let app = ServeApp(databasePath: path, token: nil)
        var size = 0
        let overview = measure(rounds: 7) { size = (try? app.route("/", queue))?.body.count ?? 0 }
        print("serve: overview with 100,000 items queued: \(format(overview * 1000, 1)) ms (\(size / 1024) KB)  [target ≤ 20 ms]")
        let gridTime = measure(rounds: 7) { size = (try? app.route("/jobs/grid", queue))?.body.count ?? 0 }
        print("serve: a 1,000-cell grid page: \(format(gridTime * 1000, 1)) ms (\(size / 1024) KB)  [target ≤ 100 ms]")

        // A thumbnail of a 1024 × 1024 PNG: noise (the worst case: nothing compresses), and a
        // smooth picture, as generated images mostly are.
        let noise = try! PNGImage(decoding: PNG.noise(width: 1024, height: 1024, seed: 7)).encoded(level: 4)
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
        for (name, image) in [("noise", noise), ("a smooth picture", picture)] {
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
    }
}
