@testable import ComfyCLI
import QueueStore
import ComfyCore
import Foundation
import TestSupport
import Testing

/// A large job's report, contact sheets and served grid come in pages of 1,000 items: each
/// page holds its own items, links to the others, and costs the same whatever the job's size.
@Suite struct ReportPagesTests {
    @Test func aLargeJobIsPagedInTheReportTheSheetsAndServe() async throws {
        let night = try Night("pages")
        let job = try night.writeJob(count: 2_500)
        #expect(try await runBinary(["add", job, "--no-preflight"], environment: night.environment).status == .success)

        let report = try await runBinary(["report", "night"], environment: night.environment)
        #expect(report.status == .success, "\(report.stderr)")
        let pages = try (1...3).map { page in
            try String(contentsOfFile: night.path("out/" + (page == 1 ? "index.html" : "index-\(page).html")), encoding: .utf8)
        }
        for (offset, page) in pages.enumerated() {
            let first = offset * 1000
            let last = min(first + 1000, 2500) - 1
            #expect(page.contains("id=\"item-\(first)\"") && page.contains("id=\"item-\(last)\""), "page \(offset + 1)")
            #expect(!page.contains("id=\"item-\(first - 1)\"") && !page.contains("id=\"item-\(last + 1)\""), "page \(offset + 1)")
            // Every page links to the others.
            #expect(page.contains("href=\"index.html\"") || offset == 0)
            #expect(page.contains("href=\"index-3.html\"") || offset == 2)
        }
        #expect(pages[0].contains("0 of 2500 done"))
        #expect(pages[1].contains("Items 1000–1999 of 2500") && !pages[1].contains("of 2500 done"))
        #expect(!FileManager.default.fileExists(atPath: night.path("out/index-4.html")))

        let sheets = try await runBinary(["report", "night", "--png", night.path("sheet.png")], environment: night.environment)
        #expect(sheets.status == .success, "\(sheets.stderr)")
        let written = sheets.stdout.split(separator: "\n").map { String($0.dropFirst("wrote ".count)) }
        #expect(written.first == night.path("sheet.png") && written.count >= 3, "\(sheets.stdout)")
        for path in written {
            let image = try PNGImageSize(path)
            #expect(image.width <= 16_384 && image.height <= 16_384, "\(path): \(image)")
        }

        let port = try Ports.outsideEphemeralRange(1)
        let serve = try startBinary(["serve", "--listen", "127.0.0.1:\(port)"], environment: night.environment)
        defer {
            serve.terminate()
            serve.waitUntilExit()
        }
        let base = "http://127.0.0.1:\(port)"
        _ = try await eventually("comfyq serve to answer") { try? await ServeCommandTests.Served.get(base + "/api/status").status }
        let third = try await ServeCommandTests.Served.get(base + "/jobs/night?page=3")
        #expect(third.status == 200)
        #expect(third.body.contains("data-item=\"2000\"") && third.body.contains("data-item=\"2499\"") && !third.body.contains("data-item=\"1999\""))
        #expect(third.body.contains("href=\"?page=1\"") && third.body.contains("<b>2000–2499</b>"))
        let first = try await ServeCommandTests.Served.get(base + "/jobs/night")
        #expect(first.body.contains("data-item=\"999\"") && !first.body.contains("data-item=\"1000\""))
        let beyond = try await ServeCommandTests.Served.get(base + "/jobs/night?page=99")
        #expect(beyond.body.contains("data-item=\"2499\""), "a page past the end shows the last")
    }
}

/// A PNG's width and height, from its header.
func PNGImageSize(_ path: String) throws -> (width: Int, height: Int) {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(24))
    func be32(_ offset: Int) -> Int { Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3]) }
    return (be32(16), be32(20))
}

/// What a run rewrites while it goes costs what changed: the first page (how the job stands)
/// and the pages whose items finished, not the whole report.
@Suite struct ReportWriterTests {
    @Test func onlyTheFirstPageAndThePagesThatChangedAreRewritten() async throws {
        let night = try Night("rewrites")
        let job = try night.writeJob(count: 2_500)
        #expect(try await runBinary(["add", job, "--no-preflight"], environment: night.environment).status == .success)
        let writer = ReportWriter(databasePath: night.db, interval: .milliseconds(20))
        let files = (1...3).map { night.path("out/" + ($0 == 1 ? "index.html" : "index-\($0).html")) }
        @Sendable func modified(_ path: String) -> Date? { (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date }
        // New to the run: every page is written.
        writer.itemFinished(job: "night", index: 5)
        let first = try await eventually("every page written") { () -> [Date]? in
            let dates = files.compactMap(modified)
            return dates.count == 3 ? dates : nil
        }
        // Then an item of the third page: the first and the third are rewritten, the second is not.
        writer.itemFinished(job: "night", index: 2_100)
        _ = try await eventually("the third page rewritten") { modified(files[2]).map { $0 > first[2] ? true : nil } ?? nil }
        #expect(modified(files[0])! > first[0])
        #expect(modified(files[1]) == first[1], "the second page was not rewritten")
        _ = await writer.finish()
    }
}

/// A job whose stored settings are damaged does not read as a job without hooks: the run says
/// so, and its items fail, saying why, instead of running with their hooks silently left out.
@Suite struct DamagedJobTests {
    @Test func aDamagedSpecIsSaidAndItsItemsFail() async throws {
        let night = try Night("damaged")
        let job = try night.writeJob(count: 2)
        #expect(try await runBinary(["add", job, "--no-preflight"], environment: night.environment).status == .success)
        try Queue(path: night.db).database.execute("UPDATE jobs SET spec = '{damaged'")
        let run = try await runBinary(["run", "--simulate", "--no-user-hooks"], environment: night.environment)
        #expect(run.status == .failure, "\(run.stderr)")
        #expect(run.stderr.contains("warning: job night (#1): its stored settings cannot be read ("), "\(run.stderr)")
        let counts = try await Night.statusJSON(night.db)["jobs"]?.arrayValue?.first?["counts"]
        #expect(counts?["failed"] == 2 && counts?["done"] == 0, "\(String(describing: counts))")
    }
}
