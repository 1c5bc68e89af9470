import ComfyCore
import Foundation
import InputFiles
import Simulator
import TestSupport
import Testing

/// The pages in a real browser (headless Chromium over the DevTools protocol): live progress
/// without reloading, the grid's pictures in their cells, the item page, the static report from
/// file://, dark mode and a phone's width. Screenshots land in `.build/screenshots/`.
@Suite(.serialized, .enabled(if: Browser.available, "chromium is not installed, so the pages are not tested in a browser: run scripts/setup.sh"))
struct BrowserTests {
    @Test func theOverviewFollowsARunLiveAndTheJobFinishes() async throws {
        let night = try Night("browser-live")
        try night.writeServers()
        let job = try night.writeJob(count: 8, steps: 16)
        // `comfyq serve` in one process, the run in another: the page follows the queue.
        let port = try Ports.outsideEphemeralRange(1)
        let serve = try startBinary(["serve", "--listen", "127.0.0.1:\(port)"], environment: night.environment)
        defer {
            serve.terminate()
            serve.waitUntilExit()
        }
        let base = "http://127.0.0.1:\(port)/"
        _ = try await eventually("comfyq serve to answer") {
            (try? await ServeCommandTests.Served.get(base))?.status == 200 ? true : nil
        }
        #expect(try await runBinary(["add", job], environment: night.environment).status == .success)
        let browser = try await Browser.launch()
        try await browser.open(base)
        let run = try night.startRun([])
        // A mark on the window: still there at the end means the page updated itself, unreloaded.
        _ = try await browser.evaluate("window.comfyqMark = 1")
        let seen = Seen()
        let finished = try await eventually("the page to show the job finished", timeout: 60, describe: { "seen \(seen.values); run: \(night.output("run"))" }) {
            let text = try await browser.evaluate("(document.querySelector('tr[data-job=\"night\"] .done-count') || {}).textContent || ''").stringValue ?? ""
            seen.add(text)
            return text == "8/8" ? text : nil
        }
        #expect(finished == "8/8")
        #expect(seen.values.count >= 3, "the count moved on the open page: \(seen.values)")
        #expect(try await browser.evaluate("window.comfyqMark") == 1, "the page was reloaded instead of updated")
        try await browser.screenshot("overview")
        #expect(try await night.wait(run) == 0, "\(night.output("run"))")
    }

    @Test func theGridItemPageAndReportInABrowser() async throws {
        let served = try await ServeCommandTests.Served()
        let browser = try await Browser.launch()
        // The grid: every cell's picture loaded, in the cell its parameters say.
        try await browser.open(served.base + "/jobs/grid")
        let cells = try await browser.evaluate(
            """
            Array.from(document.querySelectorAll('table.grid tr')).slice(1).map(function (tr) {
              return Array.from(tr.querySelectorAll('td a')).map(function (a) {
                var img = a.querySelector('img');
                return {row: tr.querySelector('th').textContent, item: a.dataset.item, src: img ? img.getAttribute('src') : null, loaded: img ? img.naturalWidth : 0};
              });
            })
            """)
        let rows = try #require(cells.arrayValue)
        #expect(rows.count == 3 && rows.allSatisfy { $0.arrayValue?.count == 2 }, "\(cells.serialized())")
        let headers = try await browser.evaluate("Array.from(document.querySelectorAll('table.grid tr:first-child th')).slice(1).map(function (th) { return th.textContent })")
        #expect(headers == ["KSampler.cfg = 5.0", "KSampler.cfg = 7.5"])
        for (rowIndex, row) in rows.enumerated() {
            for (column, cell) in (row.arrayValue ?? []).enumerated() {
                #expect((cell["loaded"]?.numberValue?.int ?? 0) > 0, "cell \(rowIndex), \(column) shows no picture: \(cell.serialized())")
                let item = try #require(cell["item"]?.stringValue)
                let picture = try await ServeCommandTests.Served.bytes(served.base + "/files/grid/\(item)/0")
                let lines = SimulatedImage.read(try PNGImage(decoding: picture.bytes))
                let expected = "steps \(cell["row"]?.stringValue ?? "?") cfg \(["5.0", "7.5"][column])"
                #expect(lines.contains(expected), "cell \(rowIndex), \(column) (item \(item)) shows \(lines), expected \(expected)")
            }
        }
        try await browser.screenshot("grid")

        // Click a cell: its item page, with the full-size picture and its parameters.
        _ = try await browser.evaluate("document.querySelector('a[data-item=\"3\"]').click()")
        _ = try await eventually("the item page", timeout: 20) {
            try await browser.evaluateWhileNavigating("location.pathname + ' ' + document.readyState")?.stringValue == "/jobs/grid/3 complete" ? true : nil
        }
        let item = try await browser.evaluate(
            "({image: document.querySelector('.item img').naturalWidth, text: document.querySelector('main').textContent})")
        #expect(item["image"] == 192)
        #expect(item["text"]?.stringValue?.contains("KSampler.steps3") == true, "\(item.serialized())")
        try await browser.screenshot("item")

        // Dark when the system is dark; a phone's width without sideways scrolling on the overview.
        try await browser.colourScheme(dark: true)
        let background = try await browser.evaluate("getComputedStyle(document.body).backgroundColor")
        #expect(background == "rgb(18, 18, 20)", "\(background)")
        try await browser.screenshot("item-dark")
        try await browser.colourScheme(dark: false)
        try await browser.viewport(width: 390)
        try await browser.open(served.base + "/")
        #expect(try await browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth") == true)
        try await browser.screenshot("overview-phone")
        try await browser.viewport(width: nil)

        // The static report, from disk: the same grid, its pictures loaded from relative links.
        let report = try await runBinary(["report", "grid"], environment: served.night.environment)
        #expect(report.status == .success, "\(report.stderr)")
        let file = URL(fileURLWithPath: served.night.path("out/index.html")).absoluteString
        try await browser.open(file)
        let offline = try await browser.evaluate(
            "Array.from(document.querySelectorAll('table.grid img')).map(function (img) { return img.naturalWidth > 0 })")
        #expect(offline.arrayValue?.count == 6 && offline.arrayValue?.allSatisfy { $0 == true } == true, "\(offline.serialized())")
        #expect(try await browser.evaluate("Array.from(document.querySelectorAll('table.grid tr:first-child th')).slice(1).map(function (th) { return th.textContent })") == headers)
        try await browser.screenshot("report")
    }
}

/// Values a probe saw, in order, each once.
final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    var values: [String] { lock.withLock { list } }
    func add(_ value: String) { lock.withLock { if list.last != value { list.append(value) } } }
}
