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

        // Its viewer, read only: a picture of the grid opens it; the keys walk the grid; #view-N
        // is its address; no rating; Esc closes it.
        _ = try await browser.evaluate("document.querySelector('table.grid a[data-item=\"0\"]').click()")
        let shows = "(function () { var v = document.querySelector('.viewer'), img = document.querySelector('.stage img'); return location.hash + ' ' + (v.hidden ? 'closed' : img ? img.naturalWidth : 0); })()"
        func reportViewer(_ expected: String) async throws {
            _ = try await eventually("the report's viewer at \(expected)", timeout: 20, describe: { (try? await browser.evaluate(shows))?.stringValue ?? "?" }) {
                try await browser.evaluate(shows).stringValue == expected ? true : nil
            }
        }
        try await reportViewer("#view-0 192")
        try await browser.press("ArrowRight")
        try await browser.press("ArrowDown")
        try await reportViewer("#view-3 192")
        #expect(try await browser.evaluate("document.querySelector('figcaption').textContent").stringValue?.contains("grid/3 · KSampler.steps = 3 · KSampler.cfg = 7.5") == true)
        #expect(try await browser.evaluate("document.querySelectorAll('.viewer button.rate').length") == 0)
        try await browser.press("Escape")
        try await reportViewer(" closed")
        try await browser.open(file + "#view-5")
        try await reportViewer("#view-5 192")
    }
}

/// Values a probe saw, in order, each once.
final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    var values: [String] { lock.withLock { list } }
    func add(_ value: String) { lock.withLock { if list.last != value { list.append(value) } } }

    /// The morning review in a real browser: the viewer walks the grid with the keyboard and the
    /// URL follows; a star set in the page is in the queue (`status --json`) and survives a
    /// reload; the grid shows only the starred; compare shows the chosen items.
    @Test func theViewerRatingsAndCompare() async throws {
        let served = try await ServeCommandTests.Served()
        let browser = try await Browser.launch()
        // Grid: rows KSampler.steps 2, 3, 4; columns cfg 5.0, 7.5: items 0 1 / 2 3 / 4 5.
        try await browser.open(served.base + "/jobs/grid/view/0")
        try await browser.waitForView("/jobs/grid/view/0")
        #expect(try await browser.evaluate("document.querySelector('.stage img').naturalWidth") == 192)
        #expect(try await browser.evaluate("document.querySelector('figcaption').textContent")
            .stringValue?.contains("KSampler.steps = 2 · KSampler.cfg = 5.0") == true)
        // Keys pressed one after the other without waiting: each moves from where the last ended.
        try await browser.press("ArrowRight")
        try await browser.press("ArrowDown")
        try await browser.waitForView("/jobs/grid/view/3")
        try await browser.press("End")
        try await browser.waitForView("/jobs/grid/view/5")
        try await browser.press("ArrowUp")
        try await browser.waitForView("/jobs/grid/view/3")
        // The browser's back button goes back a view.
        _ = try await browser.evaluate("history.back()")
        try await browser.waitForView("/jobs/grid/view/5")
        _ = try await browser.evaluate("history.forward()")
        try await browser.waitForView("/jobs/grid/view/3")
        // Star it with its key: in the queue, and still so after a reload.
        try await browser.press("s")
        _ = try await eventually("the star", timeout: 20) {
            try await browser.evaluateWhileNavigating("(document.querySelector('.rating-now') || {}).textContent")?.stringValue?.contains("starred") == true ? true : nil
        }
        let status = try JSONValue(parsing: try await runBinary(["status", "grid", "--json"], environment: served.night.environment).stdout)
        #expect(status["items"]?.arrayValue?.map { $0["rating"] ?? .null } == [.null, .null, .null, "starred", .null, .null], "\(status.serialized())")
        try await browser.open(served.base + "/jobs/grid/view/3")
        try await browser.waitForView("/jobs/grid/view/3")
        #expect(try await browser.evaluate("document.querySelector('.rating-now').textContent").stringValue?.contains("starred") == true)
        try await browser.screenshot("viewer")
        // Choose 3 and 2 for compare, then open it: both, side by side, their pictures loaded.
        try await browser.press("c")
        try await browser.press("ArrowLeft")
        try await browser.waitForView("/jobs/grid/view/2")
        try await browser.press("c")
        let compare = try await browser.evaluate("document.querySelector('.compare-open').getAttribute('href')")
        #expect(compare == "/jobs/grid/compare?items=3,2", "\(compare)")
        try await browser.open(served.base + (compare.stringValue ?? ""))
        let figures = try await browser.evaluate(
            "Array.from(document.querySelectorAll('.compare figure')).map(function (f) { return [f.dataset.item, f.querySelector('img').naturalWidth] })")
        #expect(figures == [["3", 192], ["2", 192]], "\(figures.serialized())")
        try await browser.screenshot("compare")
        // The grid, starred only.
        try await browser.open(served.base + "/jobs/grid?show=starred")
        let cells = try await browser.evaluate("Array.from(document.querySelectorAll('table.grid td a')).map(function (a) { return a.dataset.item })")
        #expect(cells == ["3"], "\(cells.serialized())")
        // Esc from the viewer goes back to the grid.
        try await browser.open(served.base + "/jobs/grid/view/0")
        try await browser.waitForView("/jobs/grid/view/0")
        try await browser.press("Escape")
        try await browser.waitFor(path: "/jobs/grid")
    }

    /// A job file's follow-ups are buttons on its page: one queues the follow-up for the starred
    /// pictures, which runs on their outputs; the item pages link both ways.
    @Test func aFollowUpQueuedFromThePageRunsOnTheStarredPictures() async throws {
        let home = try CLIHome("comfyq-followup-page")
        let workflows = Paths.packageRoot.appendingPathComponent("jobs/workflows").path
        _ = try home.write(
            "keepers.json",
            """
            {name: "keepers", workflow: "\(workflows)/img2img.json",
             set: {"Load Image.image": {file: "{from.output}"}, "KSampler.denoise": 0.5}, output: {folder: "\(home.path("keepers"))"}}
            """)
        let night = try home.write(
            "night.json",
            """
            {name: "night", workflow: "\(workflows)/txt2img.json", seeds: {start: 1, count: 3},
             set: {"KSampler.steps": 2, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64},
             output: {folder: "\(home.path("out"))"}, followups: {keepers: "keepers.json"}}
            """)
        let run = try await runBinary(["run", night, "--simulate", "--no-user-hooks"], environment: home.environment)
        try #require(run.status == .success, "\(run.stderr)")
        #expect(try await runBinary(["star", "night/0,2"], environment: home.environment).status == .success)
        let port = try Ports.outsideEphemeralRange(1)
        let serve = try startBinary(["serve", "--listen", "127.0.0.1:\(port)"], environment: home.environment)
        defer {
            serve.terminate()
            serve.waitUntilExit()
        }
        let base = "http://127.0.0.1:\(port)"
        _ = try await eventually("comfyq serve to answer") { try? await ServeCommandTests.Served.get(base + "/api/status").status }
        let browser = try await Browser.launch()
        try await browser.open(base + "/jobs/night")
        #expect(try await browser.evaluate("document.querySelector('.followups').textContent").stringValue?.contains("for the 2 starred") == true)
        _ = try await browser.evaluate("document.querySelector('button[data-followup=\"keepers\"]').click()")
        try await browser.waitFor(path: "/jobs/keepers")
        let queued = try await runBinary(["run", "--simulate", "--no-user-hooks"], environment: home.environment)
        #expect(queued.status == .success, "\(queued.stderr)")
        let status = try JSONValue(parsing: try await runBinary(["status", "keepers", "--json"], environment: home.environment).stdout)
        #expect(status["jobs"]?.arrayValue?.first { $0["name"] == "keepers" }?["counts"]?["done"] == 2, "\(status.serialized())")
        for (position, source) in [(0, 0), (1, 2)] {
            let sidecar = try JSONValue(parsing: try String(contentsOfFile: home.path("keepers/keepers_\(position).json"), encoding: .utf8))
            #expect(sidecar["inputs"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [home.path("out/night_\(source).png")], "\(sidecar.serialized())")
        }
        // The item pages link both ways.
        try await browser.open(base + "/jobs/keepers/1")
        #expect(try await browser.evaluate("Array.from(document.querySelectorAll('a')).some(function (a) { return a.getAttribute('href') === '/jobs/night/2' && a.textContent === 'from night/2' })") == true)
        try await browser.open(base + "/jobs/night/2")
        #expect(try await browser.evaluate("Array.from(document.querySelectorAll('a')).some(function (a) { return a.getAttribute('href') === '/jobs/keepers/1' })") == true)
    }

    /// Rating from the grid itself: a key on the focused picture, and its ★ button; the page
    /// shows the new rating by itself (it follows the queue).
    @Test func theGridRatesWithAKeyAndAButton() async throws {
        let served = try await ServeCommandTests.Served()
        let browser = try await Browser.launch()
        try await browser.open(served.base + "/jobs/grid")
        _ = try await browser.evaluate("document.querySelector('a[data-item=\"4\"]').focus()")
        try await browser.press("x")
        _ = try await browser.evaluate("document.querySelector('a[data-item=\"5\"]').closest('.cell-item').querySelector('button[data-rate=\"starred\"]').click()")
        let ratings = try await eventually("the ratings in the queue", timeout: 20) { () -> [JSONValue]? in
            let status = try JSONValue(parsing: try await runBinary(["status", "grid", "--json"], environment: served.night.environment).stdout)
            let ratings = status["items"]?.arrayValue?.map { $0["rating"] ?? .null } ?? []
            return ratings == [.null, .null, .null, .null, "rejected", "starred"] ? ratings : nil
        }
        #expect(ratings.count == 6)
        _ = try await eventually("the grid to show them", timeout: 20) {
            try await browser.evaluateWhileNavigating(
                "[document.querySelector('a[data-item=\"4\"]').dataset.rating, document.querySelector('a[data-item=\"5\"]').dataset.rating].join(' ')")?
                .stringValue == "rejected starred" ? true : nil
        }
        try await browser.screenshot("grid-rated")
    }
}
