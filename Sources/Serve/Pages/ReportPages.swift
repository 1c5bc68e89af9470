import QueueStore

/// A large job's grid and report come in pages of `size` items (by index): a page costs the
/// same to build, send and rewrite whatever the job's size.
package enum ReportPages {
    package static let size = 1000

    package static func count(_ job: JobSummary) -> Int { max(1, (job.total + size - 1) / size) }
    /// The item indexes on `page` (from 1).
    package static func range(_ page: Int) -> Range<Int> { ((page - 1) * size)..<(page * size) }
    package static func page(of index: Int) -> Int { index / size + 1 }
    /// The report's file for `page`: `index.html`, then `index-2.html`…
    package static func fileName(_ page: Int) -> String { page == 1 ? "index.html" : "index-\(page).html" }

    /// Links to every page (none for a job of one page); `link` gives a page's URL.
    package static func pager(_ current: Int, of count: Int, total: Int, link: (Int) -> String) -> String {
        guard count > 1 else { return "" }
        var html = "<p class=\"pager\">Items by \(size): "
        for page in 1...count {
            let first = (page - 1) * size
            let label = "\(first)–\(min(page * size, total) - 1)"
            html += page == current ? "<b>\(label)</b> " : "<a href=\"\(link(page))\">\(label)</a> "
        }
        return html + "</p>"
    }
}
