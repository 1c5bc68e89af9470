import ComfyCore
import QueueStore
import Serve
import Testing

/// The viewer's document for an item: what it shows and where each key goes, served and in a report.
@Suite struct ViewerDocumentTests {
    static func row(_ index: Int, state: ItemState = .done, rating: Rating? = nil, steps: Int, cfg: Double) -> ItemRow {
        var row = ItemRow(jobID: 1, jobName: "a b", index: index, state: state, parameters: #"{"KSampler.steps": \#(steps), "KSampler.cfg": \#(cfg) }"#)
        row.rating = rating
        return row
    }

    static let job = JobSummary(id: 1, name: "a b", file: "a.json", counts: [.done: 5, .failed: 1])

    /// Items 0 1 / 2 3 / 4 5: rows KSampler.steps 2, 3, 4; columns cfg 5.0, 7.5.
    static let rows = (0..<6).map { row($0, state: $0 == 5 ? .failed : .done, rating: $0 == 3 ? .starred : nil, steps: 2 + $0 / 2, cfg: $0 % 2 == 0 ? 5.0 : 7.5) }
    static let grid = JobGrid(items: rows.map { JobGrid.Item(index: $0.index, parameters: ServeApp.parameters($0)) }, matrixAxes: ["KSampler.steps", "KSampler.cfg"])
    static let outputs = Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, ["/night/out/a_\($0).png"]) })

    @Test func servedItHasTheAPIsURLsAndTheRating() throws {
        let document = ViewerPages.document(job: Self.job, row: Self.rows[3], grid: Self.grid, range: 0..<1000, outputs: Self.outputs, served: true)
        #expect(document["image"] == "/files/a%20b/3/0")
        #expect(document["rating"] == "starred")
        #expect(document["caption"] == [["KSampler.steps", "3"], ["KSampler.cfg", "7.5"]])
        // Right is the next in reading order, on the next row at a row's end.
        #expect(document["moves"] == ["left": 2, "right": 4, "up": 1, "down": 5, "first": 0, "last": 5])
        // The neighbours with a picture (5 failed: none).
        #expect(document["preload"] == ["/files/a%20b/2/0", "/files/a%20b/4/0", "/files/a%20b/1/0"])
        #expect(document["rate"] == "/jobs/a%20b/3/rate")
        #expect(document["links"]?["details"] == "/jobs/a%20b/3")
    }

    @Test func inAReportItIsReadOnlyWithRelativeLinks() throws {
        let document = ViewerPages.document(
            job: Self.job, row: Self.rows[5], grid: Self.grid, range: 0..<1000, outputs: Self.outputs, served: false, relative: { "out/" + ($0.split(separator: "/").last.map(String.init) ?? "") })
        #expect(document["image"] == .null)
        #expect(document["state"] == "failed")
        #expect(document["rate"] == nil)
        #expect(document["links"]?["details"] == "#item-5")
        #expect(document["preload"] == ["out/a_4.png", "out/a_3.png"])
    }

    /// Across the pages of a large job: right from a page's last item is the next page's first.
    @Test(arguments: [
        (999, 0..<1000, 2500, 998 as Int?, 1000 as Int?),
        (1000, 1000..<2000, 2500, 999, 1001),
        (2499, 2000..<3000, 2500, 2498, nil),
        (0, 0..<1000, 2500, nil, 1),
    ])
    func movesCrossPages(index: Int, range: Range<Int>, total: Int, left: Int?, right: Int?) {
        let items = range.clamped(to: 0..<total).map { JobGrid.Item(index: $0, parameters: ["seed": .int($0)]) }
        let moves = ViewerPages.moves(JobGrid(items: items), from: index, page: range, total: total)
        #expect(moves.left == left)
        #expect(moves.right == right)
        #expect(moves.first == 0)
        #expect(moves.last == total - 1)
    }
}
