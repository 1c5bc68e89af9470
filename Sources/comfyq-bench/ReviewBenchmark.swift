import ComfyCore
import Foundation
import QueueStore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The morning review of a large job: a 10,000-item sweep run at zero simulated time (the release
/// `comfyq` beside this one, through a separate `comfyq simulate`), then `comfyq serve` on its
/// queue: how long the job's grid page (first and last page), the viewer (first and last item)
/// and a rating take, medians of 20 requests each, against the same for a 100-item job.
///
///     comfyq-bench review [count]     (default 10000)
enum ReviewBenchmark {
    static func run(count: Int = 10_000) async {
        guard let comfyq = SupervisionBenchmark.comfyq else {
            print("review: skipped: build the comfyq product beside comfyq-bench (swift build -c release)")
            return
        }
        guard let small = await timings(comfyq, count: 100), let large = await timings(comfyq, count: count) else { return }
        print("review: comfyq serve with a \(count)-item job vs a 100-item one, medians of 20 requests (ms)")
        for (name, smallTime) in small {
            let largeTime = large.first { $0.0 == name }?.1 ?? 0
            print("  \(name): \(format(largeTime, 1)) vs \(format(smallTime, 1)) (×\(format(largeTime / max(smallTime, 0.001), 2)))  [target: fast at any size]")
        }
    }

    static func timings(_ comfyq: String, count: Int) async -> [(String, Double)]? {
        await ReportBenchmark.afterSweep(comfyq, count: count, label: "review") { _, db, _, _ in await serveTimings(comfyq, db: db, count: count) }
    }

    /// `comfyq serve` over the finished night's queue: each page's median of 20 requests.
    static func serveTimings(_ comfyq: String, db: String, count: Int) async -> [(String, Double)] {
        let servePort = Int.random(in: 20_000..<30_000)
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: comfyq)
        serve.arguments = ["serve", "--listen", "127.0.0.1:\(servePort)", "--db", db]
        serve.standardOutput = FileHandle.nullDevice
        serve.standardError = FileHandle.nullDevice
        try? serve.run()
        defer {
            serve.terminate()
            serve.waitUntilExit()
        }
        let base = "http://127.0.0.1:\(servePort)"
        _ = await SupervisionBenchmark.until(10) { (try? Data(contentsOf: URL(string: base + "/api/status")!)) != nil }
        let session = URLSession(configuration: .ephemeral)
        // A request that is not answered with its page (an old binary, a wrong URL) gives no figure.
        func timed(_ request: URLRequest) async -> Double {
            var times: [Double] = []
            for _ in 0..<20 {
                let start = ContinuousClock.now
                let status = ((try? await session.data(for: request))?.1 as? HTTPURLResponse)?.statusCode ?? 0
                guard (200..<400).contains(status) else {
                    print("review: \(request.httpMethod ?? "GET") \(request.url?.path ?? "?") answered \(status); no figure")
                    return .nan
                }
                times.append((ContinuousClock.now - start).seconds * 1000)
            }
            return median(times)
        }
        let lastPage = (count + 999) / 1000
        var rate = URLRequest(url: URL(string: base + "/jobs/sweep/\(count - 1)/rate")!)
        rate.httpMethod = "POST"
        rate.httpBody = Data("rating=starred".utf8)
        rate.setValue("comfyq", forHTTPHeaderField: "X-Requested-By")
        return [
            ("grid, first page", await timed(URLRequest(url: URL(string: base + "/jobs/sweep")!))),
            ("grid, last page", await timed(URLRequest(url: URL(string: base + "/jobs/sweep?page=\(lastPage)")!))),
            ("viewer, first item (its document from the API)", await timed(URLRequest(url: URL(string: base + "/api/jobs/sweep/items/0")!))),
            ("viewer, last item (its document from the API)", await timed(URLRequest(url: URL(string: base + "/api/jobs/sweep/items/\(count - 1)")!))),
            ("star the last item", await timed(rate)),
        ]
    }
}
