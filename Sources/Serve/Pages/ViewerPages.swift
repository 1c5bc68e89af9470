import ComfyCore
import Foundation
import QueueStore

/// The morning review in the browser: the viewer (one picture large, the keyboard moving
/// through the job in grid order, each view its own URL; Web/viewer.js) and compare (two to
/// four side by side, or flipped in place, zoomed and panned together; Web/compare.js).
/// Ratings post to `ServeApp.control`.
package enum ViewerPages {
    package static func viewURL(_ job: String, _ index: Int) -> String { "/jobs/\(ServePages.segment(job))/view/\(index)" }

    /// What the viewer shows of one item, and where its keys go: the view document (served at
    /// `/api/jobs/NAME/items/INDEX`, embedded in a report). `grid` is the item's page of the job;
    /// `outputs` its items' output files; `served`: URLs of this server, else `relative` turns a
    /// file into a link from the report and there is no rating.
    package static func document(
        job: JobSummary, row: ItemRow, grid: JobGrid, range: Range<Int>, outputs: [Int: [String]], served: Bool, relative: (String) -> String = { $0 }
    ) -> JSONValue {
        let moves = moves(grid, from: row.index, page: range, total: job.total)
        let name = ServePages.segment(job.name)
        func image(_ index: Int) -> String? {
            guard let first = outputs[index]?.first else { return nil }
            return served ? "/files/\(name)/\(index)/0" : relative(first)
        }
        let parameters = ServeApp.parameters(row)
        let caption = grid.axes.compactMap { axis in parameters[axis].map { JSONValue.array([.string(axis), .string(JobGrid.shown($0))]) } }
        func index(_ value: Int?) -> JSONValue { value.map { .int($0) } ?? .null }
        var document: JSONObject = [
            "job": .string(job.name), "index": .int(row.index), "state": .string(row.state.rawValue),
            "error": row.error.map { .string($0) } ?? .null, "rating": row.rating.map { .string($0.rawValue) } ?? .null,
            "image": image(row.index).map { .string($0) } ?? .null, "caption": .array(caption),
            "moves": [
                "left": index(moves.left), "right": index(moves.right), "up": index(moves.up), "down": index(moves.down),
                "first": index(moves.first), "last": index(moves.last),
            ],
            "preload": .array([moves.left, moves.right, moves.up, moves.down].compactMap { $0 }.compactMap(image).map { .string($0) }),
            "links": served
                ? ["grid": .string("/jobs/\(name)"), "details": .string("/jobs/\(name)/\(row.index)"), "view": .string(viewURL(job.name, row.index))]
                : ["grid": "#", "details": .string("#item-\(row.index)"), "view": .string("#view-\(row.index)")],
        ]
        if served { document["rate"] = .string("/jobs/\(name)/\(row.index)/rate") }
        return .object(document)
    }

    /// Where each key goes from `index`: in grid order within its page, and across pages of a
    /// large job (the next page's first item, the previous page's last); Home and End the job's ends.
    package static func moves(_ grid: JobGrid, from index: Int, page range: Range<Int>, total: Int) -> JobGrid.Moves {
        var moves = grid.moves(from: index) ?? JobGrid.Moves()
        if moves.right == nil, range.upperBound < total { moves.right = range.upperBound }
        if moves.left == nil, range.lowerBound > 0 { moves.left = range.lowerBound - 1 }
        moves.first = 0
        moves.last = total - 1
        return moves
    }

    // MARK: Viewer

    /// The served viewer: a shell viewer.js fills from the JSON API, and moves through with
    /// the history (each view its own URL, a reload shows the same one).
    package static func viewer(job: String, index: Int) -> String {
        let name = ServePages.segment(job)
        let html = """
            <div class="viewer" data-api="/api/jobs/\(name)/items/" data-base="/jobs/\(name)/view/" data-grid="/jobs/\(name)" data-item="\(index)">\
            <nav></nav><p class="failed viewer-error" hidden></p><div class="stage"></div><figcaption></figcaption></div>\
            <noscript><p>The viewer needs JavaScript: <a href="/jobs/\(name)/\(index)">the item's page</a>.</p></noscript>
            """
        return ServePages.page("\(job)/\(index)", html, scripts: ["viewer.js"], live: false)
    }

    /// The report's viewer (read only): a picture of the grid opens it over the page; its
    /// documents are in the page (`views`, index → document).
    static func reportViewer(page: Int, views: JSONObject) -> String {
        let data: JSONValue = ["page": .int(page), "pageSize": .int(ReportPages.size), "items": .object(views)]
        return """
            <div class="viewer overlay" hidden><nav></nav><p class="failed viewer-error" hidden></p><div class="stage"></div><figcaption></figcaption></div>\
            <script type="application/json" id="comfyq-views">\(data.serialized().replacingOccurrences(of: "</", with: "<\\/"))</script>
            """
    }

    // MARK: Compare

    package static func compare(job: JobSummary, items: [(row: ItemRow, caption: [(String, String)], image: String?)]) -> String {
        // The captions say what differs between the chosen items (all of it for one item).
        let differs = Set(items.flatMap(\.caption).map(\.0).filter { key in Set(items.map { item in item.caption.first { $0.0 == key }?.1 ?? "" }).count > 1 })
        let items = items.map { item in (row: item.row, caption: items.count > 1 ? item.caption.filter { differs.contains($0.0) } : item.caption, image: item.image) }
        var html = "<p><a href=\"/jobs/\(ServePages.segment(job.name))\">grid</a> · <kbd>f</kbd> flip one over the other · "
        html += "<kbd>+</kbd> <kbd>-</kbd> <kbd>0</kbd> zoom, drag to pan (all together)</p><div class=\"compare\" data-grid=\"/jobs/\(ServePages.segment(job.name))\">"
        for (offset, item) in items.enumerated() {
            html += "<figure data-item=\"\(item.row.index)\"\(offset == 0 ? " class=\"shown\"" : "")><div class=\"frame\">"
            html += item.image.map { "<img src=\"\($0)\" alt=\"\(ServePages.escape(job.name))/\(item.row.index)\">" } ?? "<p class=\"muted\">\(item.row.state.rawValue)</p>"
            html += "</div><figcaption><a href=\"\(viewURL(job.name, item.row.index))\">\(ServePages.escape(job.name))/\(item.row.index)</a>"
            for (key, value) in item.caption { html += " · \(ServePages.escape(key)) = \(ServePages.escape(value))" }
            html += ServePages.ratingMark(item.row.rating) + "</figcaption></figure>"
        }
        html += "</div>"
        return ServePages.page("\(job.name): compare", html, scripts: ["compare.js"], live: false)
    }
}
