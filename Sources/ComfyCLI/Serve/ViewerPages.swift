import ComfyCore
import Foundation
import QueueStore

/// The morning review in the browser: the viewer (one picture large, the keyboard moving
/// through the job in grid order, each view its own URL) and compare (two to four side by side,
/// or flipped in place, zoomed and panned together). Ratings post to `ServeApp.control`.
enum ViewerPages {
    static func viewURL(_ job: String, _ index: Int) -> String { "/jobs/\(ServePages.segment(job))/view/\(index)" }

    /// A rating form: star, reject or clear, back to `back` after.
    static func rateForm(_ job: String, _ index: Int, rating: String, label: String, key: String, back: String) -> String {
        """
        <form method="post" action="/jobs/\(ServePages.segment(job))/\(index)/rate" class="rate" data-key="\(key)">\
        <input type="hidden" name="rating" value="\(rating)"><input type="hidden" name="back" value="\(ServePages.escape(back))">\
        <button>\(label) <kbd>\(key)</kbd></button></form>
        """
    }

    static let style = """
        <style>
        .viewer{display:flex;flex-direction:column;height:calc(100vh - 6rem)}
        .viewer nav{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.25rem 0}
        .viewer nav form{display:inline}
        .stage{flex:1;min-height:0;display:flex;align-items:center;justify-content:center;overflow:auto}
        .stage img{max-width:100%;max-height:100%;width:100%;height:100%;object-fit:contain}
        .stage.actual img{width:auto;height:auto;max-width:none;max-height:none}
        img.pixelated{image-rendering:pixelated}
        figcaption{margin:.25rem 0}
        kbd{font-size:.75em;opacity:.7}
        .compare{display:flex;gap:.5rem;height:calc(100vh - 8rem)}
        .compare figure{flex:1;margin:0;overflow:hidden;position:relative;display:flex;flex-direction:column}
        .compare .frame{flex:1;overflow:hidden;display:flex;align-items:center;justify-content:center}
        .compare img{width:100%;height:100%;object-fit:contain;transform-origin:center}
        .compare.flip figure{display:none}.compare.flip figure.shown{display:flex}
        </style>
        """

    // MARK: Viewer

    static func viewer(
        job: JobSummary, row: ItemRow, caption: [(String, String)], image: String?, moves: JobGrid.Moves, preload: [String]
    ) -> String {
        let name = job.name
        let here = viewURL(name, row.index)
        func data(_ key: String, _ index: Int?) -> String { index.map { " data-\(key)=\"\(viewURL(name, $0))\"" } ?? "" }
        var html = style
        html += "<div class=\"viewer\" data-grid=\"/jobs/\(ServePages.segment(name))\" data-item=\"\(row.index)\""
        html += data("left", moves.left) + data("right", moves.right) + data("up", moves.up) + data("down", moves.down)
        html += data("first", moves.first) + data("last", moves.last) + ">"
        html += "<nav>"
        html += moves.left.map { "<a href=\"\(viewURL(name, $0))\" class=\"prev\">← previous</a>" } ?? ""
        html += "<a href=\"/jobs/\(ServePages.segment(name))\" class=\"back\">grid <kbd>Esc</kbd></a>"
        html += moves.right.map { "<a href=\"\(viewURL(name, $0))\" class=\"next\">next →</a>" } ?? ""
        if row.state == .done {
            html += rateForm(name, row.index, rating: "starred", label: "★ star", key: "s", back: here)
            html += rateForm(name, row.index, rating: "rejected", label: "✕ reject", key: "x", back: here)
            html += rateForm(name, row.index, rating: "none", label: "clear", key: "u", back: here)
        }
        html += "<a href=\"#\" class=\"compare-toggle\">compare <kbd>c</kbd></a> <a href=\"#\" class=\"compare-open\"></a>"
        html += "<a href=\"/jobs/\(ServePages.segment(name))/\(row.index)\">details</a>"
        html += "</nav>"
        html += "<div class=\"stage\">"
        html += image.map { "<img class=\"view\" src=\"\($0)\" alt=\"\(ServePages.escape(name))/\(row.index)\">" } ?? "<p class=\"muted\">\(row.state.rawValue)</p>"
        html += "</div><figcaption>\(ServePages.escape(name))/\(row.index)"
        for (key, value) in caption { html += " · \(ServePages.escape(key)) = \(ServePages.escape(value))" }
        if let rating = row.rating { html += " · <span class=\"rating-now\">\(ServePages.ratingMark(rating)) \(rating.rawValue)</span>" }
        html += "</figcaption></div>"
        for url in preload { html += "<link rel=\"prefetch\" href=\"\(url)\"><img src=\"\(url)\" alt=\"\" hidden>" }
        html += script
        return ServePages.page("\(name)/\(row.index)", html)
    }

    /// The viewer's keys, touch and compare list; the page works without it (links and forms).
    static let script = """
        <script>
        (function () {
          var v = document.querySelector('.viewer'); if (!v) return;
          function go(key) { var url = v.dataset[key]; if (url) location.assign(url); }
          var img = document.querySelector('.stage img');
          function fit() {
            if (!img || !img.naturalWidth) return;
            var stage = img.parentNode;
            img.classList.toggle('pixelated', img.naturalWidth < stage.clientWidth && img.naturalHeight < stage.clientHeight);
          }
          if (img) { if (img.complete) fit(); else img.addEventListener('load', fit); }
          var job = v.dataset.grid, item = v.dataset.item, storeKey = 'comfyq-compare:' + job;
          function chosen() { try { return JSON.parse(localStorage.getItem(storeKey) || '[]'); } catch (e) { return []; } }
          function showCompare() {
            var list = chosen(), link = document.querySelector('.compare-open');
            link.textContent = list.length > 1 ? 'open compare (' + list.length + ')' : (list.length ? '1 chosen' : '');
            link.href = list.length > 1 ? job + '/compare?items=' + list.join(',') : '#';
            document.querySelector('.compare-toggle').firstChild.textContent = list.indexOf(item) >= 0 ? 'uncompare ' : 'compare ';
          }
          function toggleCompare() {
            var list = chosen(), at = list.indexOf(item);
            if (at >= 0) list.splice(at, 1); else { list.push(item); if (list.length > 4) list.shift(); }
            localStorage.setItem(storeKey, JSON.stringify(list)); showCompare();
          }
          document.querySelector('.compare-toggle').addEventListener('click', function (e) { e.preventDefault(); toggleCompare(); });
          showCompare();
          document.addEventListener('keydown', function (e) {
            if (e.altKey || e.ctrlKey || e.metaKey) return;
            var keys = {ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down', Home: 'first', End: 'last'};
            if (keys[e.key]) { e.preventDefault(); go(keys[e.key]); return; }
            if (e.key === 'Escape') { location.assign(job); return; }
            if (e.key === '1') { document.querySelector('.stage').classList.toggle('actual'); return; }
            if (e.key === 'c') { toggleCompare(); return; }
            var form = document.querySelector('form.rate[data-key="' + e.key + '"]');
            if (form) form.submit();
          });
          var startX = null;
          v.addEventListener('touchstart', function (e) { startX = e.touches[0].clientX; }, {passive: true});
          v.addEventListener('touchend', function (e) {
            if (startX === null) return;
            var dx = e.changedTouches[0].clientX - startX; startX = null;
            if (Math.abs(dx) > 50) go(dx < 0 ? 'right' : 'left');
          });
        })();
        </script>
        """

    // MARK: Compare

    static func compare(job: JobSummary, items: [(row: ItemRow, caption: [(String, String)], image: String?)]) -> String {
        // The captions say what differs between the chosen items (all of it for one item).
        let differs = Set(items.flatMap(\.caption).map(\.0).filter { key in Set(items.map { item in item.caption.first { $0.0 == key }?.1 ?? "" }).count > 1 })
        let items = items.map { item in (row: item.row, caption: items.count > 1 ? item.caption.filter { differs.contains($0.0) } : item.caption, image: item.image) }
        var html = style
        html += "<p><a href=\"/jobs/\(ServePages.segment(job.name))\">grid</a> · <kbd>f</kbd> flip one over the other · "
        html += "<kbd>+</kbd> <kbd>-</kbd> <kbd>0</kbd> zoom, drag to pan (all together)</p><div class=\"compare\">"
        for (offset, item) in items.enumerated() {
            html += "<figure data-item=\"\(item.row.index)\"\(offset == 0 ? " class=\"shown\"" : "")><div class=\"frame\">"
            html += item.image.map { "<img src=\"\($0)\" alt=\"\(ServePages.escape(job.name))/\(item.row.index)\">" } ?? "<p class=\"muted\">\(item.row.state.rawValue)</p>"
            html += "</div><figcaption><a href=\"\(viewURL(job.name, item.row.index))\">\(ServePages.escape(job.name))/\(item.row.index)</a>"
            for (key, value) in item.caption { html += " · \(ServePages.escape(key)) = \(ServePages.escape(value))" }
            html += ServePages.ratingMark(item.row.rating) + "</figcaption></figure>"
        }
        html += "</div>"
        html += """
            <script>
            (function () {
              var box = document.querySelector('.compare'), scale = 1, x = 0, y = 0, shown = 0, drag = null;
              var figures = Array.from(box.querySelectorAll('figure'));
              box.querySelectorAll('img').forEach(function (img) {
                function fit() { img.classList.toggle('pixelated', img.naturalWidth < img.parentNode.clientWidth && img.naturalHeight < img.parentNode.clientHeight); }
                if (img.complete) fit(); else img.addEventListener('load', fit);
              });
              function apply() { box.querySelectorAll('img').forEach(function (img) { img.style.transform = 'translate(' + x + 'px,' + y + 'px) scale(' + scale + ')'; }); }
              function flip() { figures.forEach(function (f, i) { f.classList.toggle('shown', i === shown); }); }
              document.addEventListener('keydown', function (e) {
                if (e.key === 'f') { box.classList.toggle('flip'); flip(); }
                else if (e.key === ' ' && box.classList.contains('flip')) { e.preventDefault(); shown = (shown + 1) % figures.length; flip(); }
                else if (e.key === '+' || e.key === '=') { scale *= 1.25; apply(); }
                else if (e.key === '-') { scale /= 1.25; apply(); }
                else if (e.key === '0') { scale = 1; x = 0; y = 0; apply(); }
                else if (e.key === 'Escape') { location.assign(document.querySelector('p a').href); }
              });
              box.addEventListener('pointerdown', function (e) { drag = {x: e.clientX - x, y: e.clientY - y}; });
              window.addEventListener('pointerup', function () { drag = null; });
              box.addEventListener('pointermove', function (e) { if (drag) { x = e.clientX - drag.x; y = e.clientY - drag.y; apply(); } });
              box.addEventListener('wheel', function (e) { e.preventDefault(); scale *= e.deltaY < 0 ? 1.1 : 1 / 1.1; apply(); }, {passive: false});
            })();
            </script>
            """
        return ServePages.page("\(job.name): compare", html)
    }
}
