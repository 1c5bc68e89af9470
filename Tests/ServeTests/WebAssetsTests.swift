import ComfyCore
import QueueStore
import Serve
import Testing

/// The browser code built into the binary, and the page template it fills.
@Suite struct WebAssetsTests {
    @Test(arguments: [
        ("a {{x}} b", ["x": "1"], "a 1 b"),
        ("{{x}}{{y}}", ["x": "1", "y": "2"], "12"),
        // What goes into a slot is not read for slots again.
        ("<main>{{body}}</main>{{scripts}}", ["body": "{{scripts}}", "scripts": "S"], "<main>{{scripts}}</main>S"),
        ("unknown {{nothing}} slot", [:], "unknown  slot"),
        ("no slots", ["x": "1"], "no slots"),
        ("an open {{ without end", [:], "an open {{ without end"),
    ])
    func templatesFillEachSlotOnce(template: String, values: [String: String], expected: String) {
        #expect(Template(template).render(values) == expected)
    }

    @Test func everyAssetIsBuiltInWithAVersionThatFollowsItsContent() throws {
        #expect(Set(WebAssets.all.keys) == ["comfyq.css", "live.js", "grid.js", "viewer.js", "compare.js"])
        for (name, asset) in WebAssets.all {
            #expect(!asset.bytes.isEmpty, "\(name)")
            #expect(WebAssets.url(name) == "/assets/\(name)?v=\(asset.version)")
            let response = try #require(WebAssets.response(name))
            #expect(response.status == 200)
            #expect(response.body == asset.bytes)
        }
        #expect(WebAssets.response("../Package.swift") == nil)
        #expect(Set(WebAssets.all.values.map(\.version)).count == WebAssets.all.count, "each file its own version")
    }

    @Test func aPageIsTheTemplateWithItsAssetsLinkedOrCarried() {
        let served = ServePages.page("a <job>", "<p>body</p>", scripts: ["viewer.js"])
        #expect(served.contains("<title>a &lt;job&gt; · comfyq</title>"))
        #expect(served.contains("<link rel=\"stylesheet\" href=\"\(WebAssets.url("comfyq.css"))\">"))
        #expect(served.contains("<script src=\"\(WebAssets.url("viewer.js"))\"></script><script src=\"\(WebAssets.url("live.js"))\"></script>"))
        #expect(served.contains("<main><p>body</p></main>"))
        // A report opens from a file: it carries the style sheet and the scripts, and links nothing.
        let report = ServePages.page("job", "<p>body</p>", scripts: ["viewer.js"], live: false, standalone: true)
        #expect(!report.contains("/assets/"))
        #expect(report.contains(WebAssets.all["comfyq.css"]!.text))
        #expect(report.contains("'use strict'"))
        #expect(!report.contains("EventSource"), "a report does not follow the queue")
    }
}
