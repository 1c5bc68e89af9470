import ComfyCore
import Foundation
import InputFiles
import QueueStore

/// The pages of `comfyq serve` rendered on the server from the queue (the overview, a job's grid,
/// an item, a report): HTML that works without scripts; the scripts (Web/) add live refresh and
/// the keys. Nothing is fetched from elsewhere.
package enum ServePages {
    package static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A path segment for a URL (job names may hold anything).
    package static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    /// A whole page from the template (Web/page.html). Served, it links the style sheet and
    /// `scripts` from `/assets/`, with live.js (the page follows the queue) when `live`; written
    /// as a report (`standalone`), it carries them inside, to open from a file with no server.
    package static func page(_ title: String, _ body: String, scripts: [String] = [], live: Bool = true, standalone: Bool = false) -> String {
        let scripts = scripts + (live && !standalone ? ["live.js"] : [])
        let head: String
        let tags: String
        if standalone {
            head = "<style>\n\(WebAssets.all["comfyq.css"]?.text ?? "")</style>"
            tags = scripts.map { "<script>\n\((WebAssets.all[$0]?.text ?? "").replacingOccurrences(of: "</", with: "<\\/"))</script>" }.joined()
        } else {
            head = "<link rel=\"stylesheet\" href=\"\(WebAssets.url("comfyq.css"))\">"
            tags = scripts.map { "<script src=\"\(WebAssets.url($0))\"></script>" }.joined()
        }
        return WebAssets.page.render(["title": escape(title), "home": standalone ? "#" : "/", "head": head, "body": body, "scripts": tags])
    }

    /// A job's held items, as a line: how many, and why no server can run them.
    package static func heldText(_ job: String, _ entry: HeldItems) -> String {
        "<b>\(escape(job))</b>: \(entry.count) item\(entry.count == 1 ? "" : "s") held, no server can run \(entry.count == 1 ? "it" : "them"): "
            + "\(escape(entry.reason)) <span class=\"muted\">(released when a server can; retry once fixed)</span>"
    }

    package static func bar(_ fraction: Double) -> String {
        "<div class=\"bar\"><i style=\"width:\(Int((max(0, min(1, fraction)) * 100).rounded()))%\"></i></div>"
    }

    // MARK: Overview

    package static func overview(
        jobs: [JobSummary], inFlight: [ItemRow], failures: [ItemRow], servers: [ServerView], runners: [RunnerView],
        recent: [(job: String, index: Int, link: String)], held: [Int64: HeldItems] = [:], notice: String? = nil
    ) -> String {
        var html = notice.map { "<p class=\"notice\">\(escape($0))</p>" } ?? ""
        html += "<h2>Jobs</h2>"
        if jobs.isEmpty { html += "<p class=\"muted\">The queue is empty: <code>comfyq add JOB</code> or <code>comfyq run JOB</code>.</p>" }
        else {
            html += "<table><tr><th>job</th><th>done</th><th>failed</th><th>running</th><th>pending</th><th></th><th>ETA</th></tr>"
            for job in jobs {
                let fraction = job.total == 0 ? 0 : Double(job.finished) / Double(job.total)
                let remaining = job.total - job.finished
                let eta = job.isFinished ? "done" : job.averageItemSeconds.map { QueueDocuments.duration($0 * Double(remaining)) } ?? "–"
                html += "<tr data-job=\"\(escape(job.name))\"><td><a href=\"/jobs/\(segment(job.name))\">\(escape(job.name))</a></td>"
                html += "<td class=\"done-count\">\(job.counts[.done] ?? 0)/\(job.total)</td><td class=\"failed\">\(job.counts[.failed] ?? 0)</td>"
                html += "<td>\(job.running)</td><td>\(job.counts[.pending] ?? 0)</td><td>\(bar(fraction))</td><td class=\"muted\">\(eta)</td></tr>"
            }
            html += "</table>"
            for job in jobs {
                guard let entry = held[job.id] else { continue }
                html += "<p class=\"held\">" + heldText(job.name, entry) + "</p>"
            }
        }
        let live = runners.filter(\.isLive)
        if !live.isEmpty {
            html += "<h2>Runs</h2><table>"
            for runner in live {
                let state = runner.record.pausedReason.map { "paused: \($0)" } ?? "running"
                html += "<tr><td>\(escape(runner.record.host)) pid \(runner.record.pid)</td><td class=\"muted\">\(escape(state))</td></tr>"
            }
            html += "</table><form method=\"post\" action=\"/drain\"><button title=\"finish what is in flight, submit nothing new\">drain</button></form>"
        }
        html += "<h2>In flight</h2>"
        if inFlight.isEmpty { html += "<p class=\"muted\">Nothing is running.</p>" }
        else {
            html += "<table><tr><th>item</th><th>server</th><th>phase</th><th>step</th><th></th></tr>"
            for item in inFlight {
                let step = item.steps.map { "\(item.step ?? 0)/\($0)" } ?? ""
                html += "<tr><td><a href=\"/jobs/\(segment(item.jobName))/\(item.index)\">\(escape(item.jobName))/\(item.index)</a></td>"
                html += "<td>\(escape(item.server ?? ""))</td><td>\(escape(item.phase ?? item.state.rawValue))</td><td>\(step)</td><td>\(bar(item.fraction ?? 0))</td></tr>"
            }
            html += "</table>"
        }
        if !servers.isEmpty {
            html += "<h2>Servers</h2><table>"
            for server in servers {
                html += "<tr><td>\(escape(server.record.name))</td><td>\(escape(server.record.state))</td><td class=\"muted\">\(escape(server.record.reason))</td></tr>"
            }
            html += "</table>"
        }
        if !recent.isEmpty {
            html += "<h2>Recent outputs</h2><p>"
            for (job, index, link) in recent {
                html += "<a href=\"/jobs/\(segment(job))/\(index)\"><img src=\"\(link)\" alt=\"\(escape(job))/\(index)\" style=\"max-height:8rem;margin:.2rem\"></a>"
            }
            html += "</p>"
        }
        if !failures.isEmpty {
            html += "<h2>Failures</h2><table>"
            for item in failures {
                html += "<tr><td><a href=\"/jobs/\(segment(item.jobName))/\(item.index)\">\(escape(item.jobName))/\(item.index)</a></td><td class=\"failed\">\(escape(item.error ?? ""))</td></tr>"
            }
            html += "</table>"
        }
        return page("overview", html)
    }

    // MARK: Job grid

    package static func gridItems(_ items: [(row: ItemRow, parameters: JSONObject)]) -> [JobGrid.Item] {
        items.map { JobGrid.Item(index: $0.row.index, parameters: $0.parameters) }
    }

    /// The grid's filter by judgement (`?show=`): only those cells are shown.
    package enum Show: String, CaseIterable {
        case starred, unrated, rejected, failed

        func includes(_ row: ItemRow) -> Bool {
            switch self {
            case .starred: row.rating == .starred
            case .rejected: row.rating == .rejected
            case .unrated: row.state == .done && row.rating == nil
            case .failed: row.state == .failed
            }
        }
    }

    package static func grid(
        job: JobSummary, items: [(row: ItemRow, parameters: JSONObject)], matrixAxes: [String], outputs: [Int: String],
        held: HeldItems? = nil, filter: [String: String], page: Int = 1, show: Show? = nil, followups: [String] = [], starred: Int = 0
    ) -> String {
        let base = "/jobs/\(segment(job.name))"
        var buttons = controls(base, cancel: !job.isFinished, retry: (job.counts[.failed] ?? 0) + (job.counts[.cancelled] ?? 0) + (job.counts[.held] ?? 0) > 0)
        // The job file's follow-ups, for the starred pictures.
        if !followups.isEmpty {
            buttons += "<p class=\"followups\">next step for the \(starred) starred: "
            for name in followups {
                buttons += "<form method=\"post\" action=\"\(base)/followup/\(segment(name))\" style=\"display:inline\">"
                buttons += "<button data-followup=\"\(escape(name))\"\(starred == 0 ? " disabled" : "")>\(escape(name))</button></form> "
            }
            buttons += "</p>"
        }
        if let held { buttons = "<p class=\"held\">" + heldText(job.name, held) + "</p>" + buttons }
        let grid = JobGrid(items: gridItems(items), matrixAxes: matrixAxes, filter: filter)
        let pages = ReportPages.count(job)
        // The filter stays in the pager's links; the page number in the selector's form.
        let kept = filter.sorted { $0.key < $1.key }.map { "&\(queryPart($0.key))=\(queryPart($0.value))" }.joined()
        let pager = ReportPages.pager(page, of: pages, total: job.total) { "?page=\($0)\(kept)" }
        let pageField = pages > 1 ? "<input type=\"hidden\" name=\"page\" value=\"\(page)\">" : ""
        let form = selector(grid, filter: filter).replacingOccurrences(of: "<form method=\"get\" class=\"selector\">", with: "<form method=\"get\" class=\"selector\">" + pageField)
        // All, or only the starred, unrated, rejected or failed ones (the URL says which).
        var shows = "<p class=\"show\">show: " + (show == nil ? "<b>all</b>" : "<a href=\"?\(kept.dropFirst())\">all</a>")
        for option in Show.allCases {
            shows += " · " + (show == option ? "<b>\(option.rawValue)</b>" : "<a href=\"?show=\(option.rawValue)\(kept)\">\(option.rawValue)</a>")
        }
        shows += "</p>"
        return Self.page(
            job.name,
            buttons + form + shows + pager
                + gridBody(job: job, items: items, grid: grid, outputs: outputs, show: show, rateControls: true, link: { "\(base)/\($0)" }) + pager,
            scripts: ["grid.js"])
    }

    /// Text for a URL's query (letters, digits and `-._~` kept; the rest percent-encoded).
    package static func queryPart(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? text
    }

    /// With more than two axes: a form to fix the outer ones to a value each (a GET, so the URL
    /// says what is shown); "all" puts every value in the rows.
    package static func selector(_ grid: JobGrid, filter: [String: String]) -> String {
        guard !grid.choices.isEmpty else { return "" }
        var html = "<form method=\"get\" class=\"selector\">"
        for (axis, values) in grid.choices {
            html += "<label>\(escape(axis)) <select name=\"\(escape(axis))\" onchange=\"this.form.submit()\"><option value=\"\">all</option>"
            for value in values {
                html += "<option value=\"\(escape(value))\"\(filter[axis] == value ? " selected" : "")>\(escape(value))</option>"
            }
            html += "</select></label> "
        }
        return html + "<noscript><button>show</button></noscript></form>"
    }

    /// Cancel and retry, as forms posting to this server (see `ServeApp.control`).
    package static func controls(_ base: String, cancel: Bool, retry: Bool) -> String {
        var html = ""
        if cancel { html += "<form method=\"post\" action=\"\(base)/cancel\" style=\"display:inline\"><button>cancel</button></form> " }
        if retry { html += "<form method=\"post\" action=\"\(base)/retry\" style=\"display:inline\"><button>retry</button></form>" }
        return html.isEmpty ? "" : "<p>\(html)</p>"
    }

    /// The grid's HTML; `link` gives where a cell leads (an item page, or an anchor in a report).
    /// `header`: the line above the grid (nil: the job's counts).
    package static func gridBody(
        job: JobSummary, items: [(row: ItemRow, parameters: JSONObject)], grid: JobGrid, outputs: [Int: String], header: String? = nil,
        show: Show? = nil, rateControls: Bool = false, link: (Int) -> String
    ) -> String {
        var html = ""
        if let header {
            html += "<p>\(header)</p>"
        } else {
            html += "<p>\(job.counts[.done] ?? 0) of \(job.total) done"
            if let failed = job.counts[.failed], failed > 0 { html += ", <span class=\"failed\">\(failed) failed</span>" }
            if let held = job.counts[.held], held > 0 { html += ", <span class=\"failed\">\(held) held</span>" }
            html += "</p>"
        }
        let rows = Dictionary(items.map { ($0.row.index, $0.row) }, uniquingKeysWith: { first, _ in first })
        html += "<table class=\"grid\"><tr><th class=\"muted\">\(escape(grid.down.joined(separator: " · ")))</th>"
        for column in grid.columns { html += "<th>\(escape(grid.across.map { "\($0) = " } ?? ""))\(escape(column))</th>" }
        html += "</tr>"
        for (rowIndex, row) in grid.rows.enumerated() {
            html += "<tr><th>\(escape(row))</th>"
            for column in grid.columns.indices {
                html += "<td>"
                for index in grid.cells[rowIndex][column] {
                    guard let item = rows[index], show?.includes(item) ?? true else { continue }
                    guard rateControls else {
                        html += cell(item, job: job.name, image: outputs[index], link: link(index))
                        continue
                    }
                    html += "<span class=\"cell-item\">" + cell(item, job: job.name, image: outputs[index], link: link(index))
                    if item.state == .done {
                        html += "<span class=\"rate-controls\"><button type=\"button\" data-rate=\"starred\" title=\"star (s)\">★</button>"
                        html += "<button type=\"button\" data-rate=\"rejected\" title=\"reject (x)\">✕</button></span>"
                    }
                    html += "</span>"
                }
                html += "</td>"
            }
            html += "</tr>"
        }
        html += "</table>"
        return html
    }

    package static func cell(_ item: ItemRow, job: String, image: String?, link: String) -> String {
        let rated = item.rating.map { " class=\"\($0.rawValue)\" data-rating=\"\($0.rawValue)\"" } ?? ""
        var html = "<a href=\"\(link)\" data-item=\"\(item.index)\"\(rated)>"
        switch item.state {
        case .done where image != nil: html += "<img src=\"\(image!)\" alt=\"\(escape(job))/\(item.index)\">"
        case .running, .submitting: html += "\(escape(item.phase ?? "running"))\(bar(item.fraction ?? 0))"
        case .failed: html += "<span class=\"failed\">failed</span>"
        default: html += "<span class=\"muted\">\(item.state.rawValue)</span>"
        }
        return html + ratingMark(item.rating) + "</a>"
    }

    /// ★ for a starred picture, ✕ for a rejected one.
    package static func ratingMark(_ rating: Rating?) -> String {
        switch rating {
        case .starred?: "<span class=\"rating starred\" title=\"starred\">★</span>"
        case .rejected?: "<span class=\"rating rejected\" title=\"rejected\">✕</span>"
        case nil: ""
        }
    }

    // MARK: Item

    package static func item(job: String, row: ItemRow, parameters: JSONObject, images: [String], timings: JSONValue?, links: [(String, String)]) -> String {
        let base = "/jobs/\(segment(job))/\(row.index)"
        var buttons = controls(base, cancel: !row.state.isFinished, retry: row.state == .failed || row.state == .cancelled || row.state == .held)
        buttons += "<p><a href=\"\(ViewerPages.viewURL(job, row.index))\" class=\"view-large\">view large (arrows move through the job)</a></p>"
        return page("\(job)/\(row.index)", buttons + itemBody(row: row, parameters: parameters, images: images, timings: timings, links: links))
    }

    /// `links`: the workflow that was submitted and each output's sidecar (named, with their URLs).
    package static func itemBody(row: ItemRow, parameters: JSONObject, images: [String], timings: JSONValue?, links: [(String, String)] = []) -> String {
        var html = ""
        for image in images { html += "<p class=\"item\"><a href=\"\(image)\"><img src=\"\(image)\" alt=\"output\"></a></p>" }
        html += "<table>"
        func line(_ name: String, _ value: String) { html += "<tr><th>\(escape(name))</th><td>\(value)</td></tr>" }
        line("state", "<span class=\"\(row.state.rawValue)\">\(row.state.rawValue)</span>")
        if let error = row.error { line("error", "<span class=\"failed\">\(escape(error))</span>") }
        for (key, value) in parameters {
            let text = InputFile(json: value).map { $0.path } ?? value.stringValue ?? value.serialized()
            line(key, escape(text))
        }
        line("prompt id", "<code>\(escape(row.promptID ?? ""))</code>")
        line("server", escape(row.server ?? ""))
        line("attempts", "\(row.attempts)")
        if let rating = row.rating { line("rating", ratingMark(rating) + " " + rating.rawValue) }
        // Phase times in the order the phases come.
        let times = timings?.objectValue ?? JSONObject()
        let order = Phase.allCases.map(\.rawValue)
        for (phase, seconds) in times.sorted(by: { (order.firstIndex(of: $0.0) ?? order.count) < (order.firstIndex(of: $1.0) ?? order.count) }) {
            line("time in \(phase)", "\(seconds.serialized()) s")
        }
        if !links.isEmpty { line("files", links.map { "<a href=\"\($0.1)\">\(escape($0.0))</a>" }.joined(separator: " · ")) }
        html += "</table>"
        return html
    }

    /// A self-contained page of a job for sharing or archiving: the grid, then every item, with
    /// links relative to where the page is written (`relative` turns an output path into one).
    /// A large job's report is paged (`ReportPages`): page `page` holds its items, and only the
    /// first says how the job stands, so a run rewrites the first page and the pages whose items
    /// changed, not every page.
    package static func report(
        job: JobSummary, items: [(row: ItemRow, parameters: JSONObject, outputs: [String], timings: JSONValue?)], matrixAxes: [String],
        page: Int = 1, relative: (String) -> String
    ) -> String {
        var thumbnails: [Int: String] = [:]
        for item in items {
            guard let first = item.outputs.first else { continue }
            let thumbnail = Thumbnail.path(for: first)
            thumbnails[item.row.index] = relative(FileManager.default.fileExists(atPath: thumbnail) ? thumbnail : first)
        }
        let rows = items.map { ($0.row, $0.parameters) }
        let pages = ReportPages.count(job)
        let pager = ReportPages.pager(page, of: pages, total: job.total) { ReportPages.fileName($0) }
        let range = ReportPages.range(page)
        let header =
            page == 1
            ? nil : "Items \(range.lowerBound)–\(min(range.upperBound, job.total) - 1) of \(job.total); how the job stands is on <a href=\"index.html\">the first page</a>."
        let grid = JobGrid(items: gridItems(rows), matrixAxes: matrixAxes)
        var html = pager
        html += gridBody(job: job, items: rows, grid: grid, outputs: thumbnails, header: header, link: { "#item-\($0)" })
        // The viewer, read only: a picture of the grid opens it.
        let outputs = Dictionary(items.map { ($0.row.index, $0.outputs) }, uniquingKeysWith: { first, _ in first })
        var views = JSONObject()
        for item in items {
            views[String(item.row.index)] = ViewerPages.document(job: job, row: item.row, grid: grid, range: range, outputs: outputs, served: false, relative: relative)
        }
        html += ViewerPages.reportViewer(page: page, views: views)
        for item in items {
            html += "<h2 id=\"item-\(item.row.index)\">\(escape(job.name))/\(item.row.index)</h2>"
            if !item.outputs.isEmpty { html += "<p><a href=\"#view-\(item.row.index)\" class=\"view-large\">view large</a></p>" }
            let sidecars = item.outputs.enumerated().map { ("sidecar \($0.offset + 1)", relative(($0.element as NSString).deletingPathExtension + ".json")) }
            html += itemBody(row: item.row, parameters: item.parameters, images: item.outputs.map(relative), timings: item.timings, links: sidecars)
        }
        return Self.page(pages > 1 ? "\(job.name) (\(page) of \(pages))" : job.name, html + pager, scripts: ["viewer.js"], live: false, standalone: true)
    }

    package static func notFound(_ what: String) -> String { page("not found", "<p>\(escape(what))</p>") }
}
