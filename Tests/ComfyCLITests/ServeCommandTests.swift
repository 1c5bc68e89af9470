import ComfyCore
import Foundation
import InputFiles
import Simulator
import TestSupport
import Testing
import WebSocket
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `comfyq serve` through the real binary, over a queue a real `comfyq run --simulate` filled:
/// the pages, the grid's cells, files, traversal, the token and the live event stream.
@Suite(.serialized) struct ServeCommandTests {
    /// A 3 × 2 matrix batch run on the simulator, and `comfyq serve` over its queue.
    final class Served: @unchecked Sendable {
        let night: Night
        let port: Int
        let process: ChildProcess
        var base: String { "http://127.0.0.1:\(port)" }

        init(token: String? = nil) async throws {
            night = try Night("serve")
            let job = night.path("grid.json")
            try """
                {name: "grid", workflow: "\(RunCommandTests.workflow)",
                 matrix: {"KSampler.steps": [2, 3, 4], "KSampler.cfg": [5.0, 7.5]},
                 set: {"Empty Latent Image.width": 192, "Empty Latent Image.height": 192},
                 output: {folder: "\(night.path("out"))", name: "{job}_{index}"}}
                """.write(toFile: job, atomically: true, encoding: .utf8)
            let run = try await runBinary(["run", "--simulate", "--no-user-hooks", job], environment: night.environment)
            try #require(run.status == .success, "\(run.stderr)")
            port = try Ports.outsideEphemeralRange(1)
            process = try startBinary(["serve", "--listen", "127.0.0.1:\(port)"] + (token.map { ["--token", $0] } ?? []), environment: night.environment)
            let base = base
            _ = try await eventually("comfyq serve to answer") { try? await Self.get(base + "/api/status", headers: ["Authorization": "Bearer \(token ?? "")"]).status }
        }

        deinit {
            process.terminate()
            process.waitUntilExit()
        }

        static func get(_ url: String, headers: [String: String] = [:]) async throws -> (status: Int, body: String, headers: [String: String]) {
            try await httpRequest(url, headers: headers)
        }

        static func bytes(_ url: String) async throws -> (status: Int, bytes: [UInt8]) {
            let (data, response) = try await URLSession(configuration: .ephemeral).data(from: URL(string: url)!)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, [UInt8](data))
        }

        /// A request written as is on a socket (no client normalises its path).
        func raw(_ target: String) throws -> String {
            let socket = try Ports.connect(port)
            defer { close(socket) }
            let request = Array("GET \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
            _ = request.withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let got = buffer.withUnsafeMutableBytes { read(socket, $0.baseAddress, 4096) }
                if got <= 0 { break }
                answer += buffer[0..<got]
            }
            return String(decoding: answer, as: UTF8.self)
        }
    }

    /// The JSON API the viewer reads, which scripts use too; the browser code from `/assets/`.
    @Test func theJSONAPIAndTheAssets() async throws {
        let served = try await Served()
        let view = try await Served.get(served.base + "/api/jobs/grid/items/3")
        #expect(view.status == 200 && view.headers["Content-Type"] == "application/json", "\(view)")
        let document = try JSONValue(parsing: view.body)
        #expect(document["job"] == "grid" && document["index"] == 3 && document["state"] == "done", "\(view.body)")
        #expect(document["caption"] == [["KSampler.steps", "3"], ["KSampler.cfg", "7.5"]], "\(view.body)")
        #expect(document["moves"] == ["left": 2, "right": 4, "up": 1, "down": 5, "first": 0, "last": 5], "\(view.body)")
        let image = try await Served.bytes(served.base + (document["image"]?.stringValue ?? "-"))
        #expect(image.status == 200 && image.bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        let job = try JSONValue(parsing: try await Served.get(served.base + "/api/jobs/grid").body)
        #expect(job["jobs"]?.arrayValue?.first?["name"] == "grid" && job["items"]?.arrayValue?.count == 6, "\(job.serialized())")
        // Errors are JSON too, one line.
        let missing = try await Served.get(served.base + "/api/jobs/grid/items/6")
        #expect(missing.status == 404 && (try? JSONValue(parsing: missing.body))?["error"] == "no item grid/6", "\(missing)")
        #expect(try await Served.get(served.base + "/api/jobs/nope").status == 404)
        #expect(try await Served.get(served.base + "/jobs/grid/view/6").status == 404)
        // The viewer's page is its shell; its script comes from /assets/, kept by the browser.
        let shell = try await Served.get(served.base + "/jobs/grid/view/3")
        #expect(shell.body.contains("data-api=\"/api/jobs/grid/items/\"") && shell.body.contains("/assets/viewer.js?v="), "\(shell.body)")
        let script = try await Served.get(served.base + "/assets/viewer.js")
        #expect(script.status == 200 && script.headers["Content-Type"] == "text/javascript; charset=utf-8" && script.headers["Cache-Control"] == "max-age=86400")
        #expect(script.body.contains("/api/jobs/NAME/items/INDEX"))
        #expect(try await Served.get(served.base + "/assets/nothing.js").status == 404)
        #expect(try await Served.get(served.base + "/assets/..%2FPackage.swift").status == 404)
    }

    @Test func pagesGridFilesAndSafety() async throws {
        let served = try await Served()
        let overview = try await Served.get(served.base + "/")
        #expect(overview.status == 200 && overview.body.contains(">grid</a>") && overview.body.contains("<td class=\"done-count\">6/6</td>"), "\(overview.body.prefix(400))")

        // The grid: KSampler.cfg across, KSampler.steps down; every cell holds its own item.
        // /api/status is `comfyq status --json`.
        let status = try JSONValue(parsing: try await Served.get(served.base + "/api/status").body)
        let cli = try JSONValue(parsing: try await runBinary(["status", "--json"], environment: served.night.environment).stdout)
        #expect(status["jobs"] == cli["jobs"] && status["schema"] == 1)
        let grid = try await Served.get(served.base + "/jobs/grid")
        #expect(grid.status == 200)
        let rows = grid.body.components(separatedBy: "<tr>").dropFirst()
        let header = try #require(rows.first)
        #expect(header.contains("KSampler.cfg = 5.0") && header.contains("KSampler.cfg = 7.5"), "\(header)")
        var seen: [Int] = []
        for (rowOffset, row) in rows.dropFirst().enumerated() {
            let cells = row.components(separatedBy: "data-item=\"").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
            let steps = [2, 3, 4][rowOffset]
            #expect(row.hasPrefix("<th>\(steps)</th>"), "\(row.prefix(60))")
            for (column, index) in cells.enumerated() {
                // Items go 0…5 in matrix order: steps slowest, cfg fastest.
                #expect(index == rowOffset * 2 + column)
                #expect(row.contains("src=\"/thumbs/grid/\(index)/0\""))
                // The picture in the cell is the one made with the cell's parameters: the
                // simulator wrote them on it, and they read back from its pixels.
                let cfg = ["5.0", "7.5"][column]
                let image = try await Served.bytes(served.base + "/files/grid/\(index)/0")
                let lines = SimulatedImage.read(try PNGImage(decoding: image.bytes))
                #expect(lines.contains("steps \(steps) cfg \(cfg)"), "cell \(steps) × \(cfg) shows \(lines)")
                seen.append(index)
            }
        }
        #expect(seen.sorted() == Array(0..<6))

        // An item page and its image, byte for byte what the run saved.
        let page = try await Served.get(served.base + "/jobs/grid/3")
        #expect(page.status == 200 && page.body.contains("KSampler.steps") && page.body.contains("<td>3</td>") && page.body.contains("7.5"))
        let image = try await Served.get(served.base + "/files/grid/3/0")
        let saved = try String(decoding: Data(contentsOf: URL(fileURLWithPath: served.night.path("out/grid_3.png"))), as: UTF8.self)
        #expect(image.status == 200 && image.body == saved)
        // Its thumbnail was made when it was collected, beside it.
        #expect(FileManager.default.fileExists(atPath: served.night.path("out/.thumbs/grid_3.png")))
        #expect(try await Served.get(served.base + "/thumbs/grid/3/0").status == 200)

        // Its submitted workflow and its sidecar, linked from its page.
        #expect(page.body.contains("href=\"/jobs/grid/3/workflow.json\"") && page.body.contains("href=\"/sidecars/grid/3/0\""))
        let workflow = try JSONValue(parsing: try await Served.get(served.base + "/jobs/grid/3/workflow.json").body)
        let sampler = workflow.objectValue?.values.first { $0["class_type"] == "KSampler" }
        #expect(sampler?["inputs"]?["steps"] == 3 && sampler?["inputs"]?["cfg"]?.numberValue?.double == 7.5)
        let sidecar = try JSONValue(parsing: try await Served.get(served.base + "/sidecars/grid/3/0").body)
        #expect(sidecar["item"] == 3 && sidecar["job"] == "grid")

        // Nothing else: unknown jobs and items, and every way of walking out of the outputs.
        #expect(try await Served.get(served.base + "/jobs/nope").status == 404)
        #expect(try await Served.get(served.base + "/jobs/grid/99").status == 404)
        #expect(try await Served.get(served.base + "/files/grid/3/1").status == 404)
        for target in ["/files/../../etc/passwd", "/files/grid/3/..%2F..%2F..%2Fetc%2Fpasswd", "/files/grid/../grid/3/0/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"] {
            let answer = try served.raw(target)
            #expect(answer.hasPrefix("HTTP/1.1 404"), "\(target): \(answer.prefix(40))")
        }
        #expect(try served.raw("/api/status").hasPrefix("HTTP/1.1 200"))
    }

    /// `comfyq report`: one page that opens from disk, every link relative and present.
    @Test func aReportOpensWithoutAServer() async throws {
        let served = try await Served()
        let report = try await runBinary(["report", "grid"], environment: served.night.environment)
        #expect(report.status == .success, "\(report.stderr)")
        let page = try String(contentsOfFile: served.night.path("out/index.html"), encoding: .utf8)
        #expect(!page.contains("EventSource") && !page.contains("/files/") && !page.contains("/thumbs/"))
        let links = page.components(separatedBy: "src=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        #expect(links.count == 12, "6 thumbnails in the grid, 6 images below: \(links)")
        for link in links {
            let path = served.night.path("out/" + (link.removingPercentEncoding ?? link))
            #expect(FileManager.default.fileExists(atPath: path), "\(link)")
        }
        #expect(links.prefix(6).allSatisfy { $0.hasPrefix(".thumbs/") })
        for index in 0..<6 { #expect(page.contains("href=\"#item-\(index)\"") && page.contains("id=\"item-\(index)\"")) }
        // An item given instead of a job, or a job with nothing to show, is one clear line.
        let item = try await runBinary(["report", "grid/1"], environment: served.night.environment)
        #expect(item.status != .success && item.stderr.contains("give a job, not an item"))
    }

    /// Cancel and retry from the pages: a form of this server's own page works; the same POST
    /// from another site (or with no origin at all) is refused.
    @Test func controlsWorkFromTheOwnPagesOnly() async throws {
        let served = try await Served()
        let second = served.night.path("later.json")
        try #"{name: "later", workflow: "\#(RunCommandTests.workflow)", seeds: {start: 1, count: 3}}"#.write(toFile: second, atomically: true, encoding: .utf8)
        #expect(try await runBinary(["add", second], environment: served.night.environment).status == .success)
        func post(_ path: String, _ headers: [String: String]) async throws -> (Int, String?) {
            var request = URLRequest(url: URL(string: served.base + path)!)
            request.httpMethod = "POST"
            for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
            let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
            let (_, response) = try await session.data(for: request)
            let http = response as? HTTPURLResponse
            return (http?.statusCode ?? 0, http?.value(forHTTPHeaderField: "Location"))
        }
        #expect(try await post("/jobs/later/cancel", [:]).0 == 403)
        #expect(try await post("/jobs/later/cancel", ["Origin": "http://evil.example"]).0 == 403)
        #expect(try await post("/jobs/later/cancel", ["Referer": "http://evil.example/jobs/later"]).0 == 403)
        let page = try await Served.get(served.base + "/jobs/later")
        #expect(page.body.contains("action=\"/jobs/later/cancel\""))
        let cancel = try await post("/jobs/later/1/cancel", ["Origin": served.base])
        #expect(cancel.0 == 303 && cancel.1 == "/jobs/later/1")
        let states = { () async throws -> [String] in
            let status = try JSONValue(parsing: try await runBinary(["status", "later", "--json"], environment: served.night.environment).stdout)
            return (status["items"]?.arrayValue ?? []).compactMap { $0["state"]?.stringValue }
        }
        #expect(try await states() == ["pending", "cancelled", "pending"])
        #expect(try await post("/jobs/later/retry", ["Referer": served.base + "/jobs/later"]).0 == 303)
        #expect(try await states() == ["pending", "pending", "pending"])
        #expect(try await post("/jobs/nope/cancel", ["Origin": served.base]).0 == 404)
    }

    /// `comfyq run --serve`: the queue is served while the run works, and each job that got
    /// outputs has its report page when it ends.
    @Test func aRunServesWhileItWorksAndLeavesAReport() async throws {
        let night = try Night("run-serve")
        let job = night.path("small.json")
        try """
            {name: "small", workflow: "\(RunCommandTests.workflow)", seeds: {start: 1, count: 4},
             set: {"Empty Latent Image.width": 64, "Empty Latent Image.height": 64},
             output: {folder: "\(night.path("out"))", name: "{job}_{index}"}}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let port = try Ports.outsideEphemeralRange(1)
        let environment = night.environment
        async let run = runBinary(["run", "--simulate", "--no-user-hooks", "--serve", "127.0.0.1:\(port)", job], environment: environment)
        _ = try await eventually("the run to serve its queue") {
            (try? await Served.get("http://127.0.0.1:\(port)/api/status"))?.status == 200 ? true : nil
        }
        let result = try await run
        #expect(result.status == .success, "\(result.stderr)")
        #expect(result.stderr.contains("serving the queue at http://127.0.0.1:\(port)/"))
        let page = try String(contentsOfFile: night.path("out/index.html"), encoding: .utf8)
        #expect(page.contains("#item-3"))
        #expect(Ports.nothingListens(on: port), "the server stops with the run")
    }

    @Test func aTokenIsNeededWhenSet() async throws {
        let served = try await Served(token: "s3cret")
        #expect(try await Served.get(served.base + "/").status == 403)
        #expect(try await Served.get(served.base + "/?token=wrong").status == 403)
        let first = try await Served.get(served.base + "/?token=s3cret")
        #expect(first.status == 200)
        let cookie = try #require(first.headers["Set-Cookie"])
        #expect(cookie.hasPrefix("comfyq_token=s3cret") && cookie.contains("HttpOnly"))
        #expect(try await Served.get(served.base + "/jobs/grid", headers: ["Cookie": "comfyq_token=s3cret"]).status == 200)
        #expect(try await Served.get(served.base + "/jobs/grid", headers: ["Authorization": "Bearer s3cret"]).status == 200)
        #expect(try await Served.get(served.base + "/jobs/grid", headers: ["Cookie": "comfyq_token=wrong"]).status == 403)
        // The JSON API and the assets as well.
        #expect(try await Served.get(served.base + "/api/jobs/grid/items/0").status == 403)
        #expect(try await Served.get(served.base + "/api/jobs/grid/items/0", headers: ["Authorization": "Bearer s3cret"]).status == 200)
        #expect(try await Served.get(served.base + "/assets/viewer.js").status == 403)
    }

    /// A change made by another process reaches an open event stream.
    @Test func theEventStreamSaysWhenTheQueueChanges() async throws {
        let served = try await Served()
        let socket = try Ports.connect(served.port)
        let request = Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
        let received = EventLines(reading: socket)
        defer { received.stop() }
        try await eventually("the stream to open", describe: { received.lines.joined(separator: "|") }) {
            received.lines.contains("retry: 1000") ? true : nil
        }
        let change = try await runBinary(["retry", "grid"], environment: served.night.environment)  // nothing to retry: no change yet
        #expect(change.status == .success)
        let add = try await runBinary(["add", served.night.path("grid.json")], environment: served.night.environment)
        #expect(add.status == .success, "\(add.stderr)")
        try await eventually("a changed event", timeout: 10, describe: { received.lines.joined(separator: "|") }) {
            received.lines.contains("data: changed") ? true : nil
        }
    }
}

extension ServeCommandTests {
    /// Many open pages and a few broken clients: every stream still hears of the change, from one
    /// watcher of the queue.
    @Test func manyStreamsAndBrokenClients() async throws {
        let served = try await Served()
        // Broken clients: one that sends half a request and goes, one that opens a stream and
        // never reads, one that closes its stream at once.
        let half = try Ports.connect(served.port)
        _ = Array("GET /events HTTP/1.1\r\nHost".utf8).withUnsafeBytes { write(half, $0.baseAddress, $0.count) }
        close(half)
        let silent = try Ports.connect(served.port)
        defer { close(silent) }
        _ = Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { write(silent, $0.baseAddress, $0.count) }
        let gone = try Ports.connect(served.port)
        _ = Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { write(gone, $0.baseAddress, $0.count) }
        close(gone)
        var opened: [EventLines] = []
        for _ in 0..<40 {
            let socket = try Ports.connect(served.port)
            _ = Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            opened.append(EventLines(reading: socket))
        }
        let streams = opened
        defer { for stream in streams { stream.stop() } }
        try await eventually("40 streams to open", describe: { "\(streams.filter { $0.lines.contains("retry: 1000") }.count) open" }) {
            streams.allSatisfy { $0.lines.contains("retry: 1000") } ? true : nil
        }
        let add = try await runBinary(["add", served.night.path("grid.json")], environment: served.night.environment)
        #expect(add.status == .success, "\(add.stderr)")
        try await eventually("every stream to hear of it", timeout: 10, describe: { "\(streams.filter { $0.lines.contains("data: changed") }.count) of 40" }) {
            streams.allSatisfy { $0.lines.contains("data: changed") } ? true : nil
        }
        // And the pages are still served.
        #expect(try await Served.get(served.base + "/").status == 200)
    }

    /// `comfyq run` keeps the job's page up to date as items finish, not only at the end.
    @Test func theReportIsKeptUpToDateWhileTheRunGoes() async throws {
        let night = try Night("live-report")
        try night.writeServers()
        let job = try night.writeJob(count: 10, steps: 10)
        let run = try night.startRun([job])
        let page = night.path("out/index.html")
        let early = try await eventually("the page while the run goes", describe: { night.output("run") }) { () -> String? in
            guard let text = try? String(contentsOfFile: page, encoding: .utf8), run.isRunning else { return nil }
            return text
        }
        #expect(early.contains(" of 10 done") && !early.contains("10 of 10 done"), "\(early.prefix(300))")
        #expect(try await night.wait(run) == 0, "\(night.output("run"))")
        #expect(try String(contentsOfFile: page, encoding: .utf8).contains("10 of 10 done"))
        #expect(FileManager.default.fileExists(atPath: night.path("out/contact-sheet.png")))
        #expect(night.output("run").contains("report: \(page) (contact sheet contact-sheet.png)"), "\(night.output("run"))")
    }
}

/// Reads an event stream's lines from a socket as they come, on a thread of its own that owns
/// the descriptor: the thread closes it after its last read, and `stop` only shuts it down
/// (nothing once it is closed). A test that closed the socket itself while the thread was between
/// two reads let the thread read whatever connection got the number next: another test's
/// WebSocket lost its frames.
final class EventLines: @unchecked Sendable {
    private let socket: SocketDescriptor
    private let lock = NSLock()
    private var collected: [String] = []
    private var partial: [UInt8] = []
    var lines: [String] { lock.withLock { collected } }

    /// Starts reading `descriptor`, which is the reader's from now on.
    init(reading descriptor: Int32) {
        socket = SocketDescriptor(descriptor)
        let thread = Thread { [self] in read() }
        thread.name = "test event stream"
        thread.start()
    }

    /// Ends the stream: the thread's read returns, and the thread closes the socket.
    func stop() { socket.shutdown() }

    private func read() {
        defer { socket.close() }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(socket.value, $0.baseAddress, 4096) }
            if got <= 0 { return }
            lock.withLock {
                partial += buffer[0..<got]
                while let newline = partial.firstIndex(of: 10) {
                    collected.append(String(decoding: partial[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
                    partial.removeFirst(newline + 1)
                }
            }
        }
    }
}

/// Lets a test see a 303 instead of following it.
final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse, newRequest request: URLRequest,
        completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
