import ComfyCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// comfyq inside ComfyUI's page: the extension installed by `comfyq comfyui install`, loaded by
/// ComfyUI's own frontend (the pinned `comfyui-frontend-package`) served by `comfyq simulate`, in
/// headless Chromium; `comfyq serve` taking the jobs.
@Suite(.serialized) struct ComfyUIExtensionTests {
    /// The frontend's static folder `scripts/setup.sh` installs for the tests.
    static let frontEnd = ProcessInfo.processInfo.environment["COMFYQ_TEST_FRONTEND"]
        ?? "/usr/local/share/comfyq-test/comfyui-frontend-package-1.58.1/static"

    /// A ComfyUI folder with the extension installed, the simulator serving the real page with
    /// it, and (unless `serve: false`) `comfyq serve` taking the page's jobs.
    final class ComfyPage: @unchecked Sendable {
        let night: Night
        let simulatorPort: Int
        let servePort: Int
        let simulator: ChildProcess
        var serve: ChildProcess?
        var page: String { "http://127.0.0.1:\(simulatorPort)" }
        var serveURL: String { "http://127.0.0.1:\(servePort)" }

        init(serve withServe: Bool = true, token: String? = nil) async throws {
            guard FileManager.default.fileExists(atPath: ComfyUIExtensionTests.frontEnd + "/index.html") else {
                throw Failure("ComfyUI's frontend is not installed at \(ComfyUIExtensionTests.frontEnd): run scripts/test.sh, whose scripts/setup.sh installs it")
            }
            night = try Night("comfyui-page")
            let ports = try Ports.outsideEphemeralRange(2)
            (simulatorPort, servePort) = (ports, ports + 1)
            try FileManager.default.createDirectory(atPath: night.path("ComfyUI/custom_nodes"), withIntermediateDirectories: true)
            let install = try await runBinary(["comfyui", "install", night.path("ComfyUI"), "--serve", "http://127.0.0.1:\(servePort)"], environment: night.environment)
            try #require(install.status == .success, "\(install.stderr)")
            simulator = try startBinary(
                [
                    "simulate", "--port", "\(simulatorPort)", "--output", night.path("sim"), "--front-end-root", ComfyUIExtensionTests.frontEnd,
                    "--custom-nodes", night.path("ComfyUI/custom_nodes"), "--step-time", "20ms", "--load-time", "0", "--node-time", "0", "--warm-up", "0",
                    // The workflow's checkpoint, so the page finds no model missing.
                    "--models", "v1-5-pruned-emaonly-fp16.safetensors",
                ], environment: night.environment)
            _ = try await simulator.waitForOutput("the simulator to listen") { $0.contains("listening on") }
            if withServe { try await startServe(token: token) }
        }

        func startServe(token: String? = nil) async throws {
            let process = try startBinary(
                ["serve", "--listen", "127.0.0.1:\(servePort)", "--allow-origin", page, "--server", page] + (token.map { ["--token", $0] } ?? []),
                environment: night.environment)
            _ = try await process.waitForOutput("comfyq serve to listen") { $0.contains("comfyq serve: ") }
            serve = process
        }

        deinit {
            serve?.terminate()
            simulator.terminate()
        }

        /// Opens ComfyUI's page and waits until the frontend is up with the extension loaded, and
        /// its requests at load have been answered (the jobs API among them).
        func open(in browser: Browser) async throws {
            // A user who has been here before: no first-run templates browser over the page.
            _ = try await Self.request(page + "/api/settings/Comfy.TutorialCompleted", method: "POST", body: "true")
            try await browser.watchConsole()
            try await browser.open(page + "/")
            _ = try await eventually("ComfyUI's page with comfyq's extension", timeout: 60, describe: { (try? await browser.evaluateWhileNavigating("document.title"))??.serialized() ?? "?" }) {
                try await browser.evaluateWhileNavigating("!!(window.comfyq && window.app && window.app.graph && window.app.extensionManager)") == true ? true : nil
            }
            let page = page
            _ = try await eventually("the page to ask for its jobs and extensions", timeout: 30) {
                let stats = try await Self.json(page + "/sim/stats", method: "POST")
                let requests = stats["requests"]?.objectValue ?? JSONObject()
                return requests["GET /api/jobs"] != nil && requests["GET /extensions"] != nil ? true : nil
            }
            _ = try await browser.evaluate("1")  // the console's events so far are in
        }

        static func json(_ url: String, method: String = "GET", body: String? = nil, headers: [String: String] = [:]) async throws -> JSONValue {
            let (status, text, _) = try await request(url, method: method, body: body, headers: headers)
            guard (200..<300).contains(status) else { throw Failure("\(method) \(url): \(status) \(text)") }
            return try JSONValue(parsing: text)
        }

        /// `httpRequest`, its header names in lower case.
        static func request(_ url: String, method: String = "GET", body: String? = nil, headers: [String: String] = [:]) async throws
            -> (status: Int, body: String, headers: [String: String])
        {
            let answer = try await httpRequest(url, method: method, body: body, headers: headers)
            return (answer.status, answer.body, Dictionary(answer.headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first }))
        }

        /// `status --json` of the page's queue.
        func status() async throws -> JSONValue {
            let run = try await runBinary(["status", "--json"], environment: night.environment)
            return try JSONValue(parsing: run.stdout)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The txt2img workflow in ComfyUI's UI format, as a JavaScript value.
    static let workflow = (try? String(contentsOf: Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.ui.json"), encoding: .utf8)) ?? "null"

    // MARK: Install

    @Test func installWritesTheExtensionAndUninstallRemovesOnlyIt() async throws {
        let night = try Night("comfyui-install")
        let comfy = night.path("ComfyUI")
        try FileManager.default.createDirectory(atPath: comfy + "/custom_nodes", withIntermediateDirectories: true)
        let install = try await runBinary(["comfyui", "install", comfy, "--serve", "http://127.0.0.1:9999/"], environment: night.environment)
        #expect(install.status == .success, "\(install.stderr)")
        #expect(install.stdout.contains("installed comfyq's extension in \(comfy)/custom_nodes/comfyq"), "\(install.stdout)")
        let folder = comfy + "/custom_nodes/comfyq"
        for file in ["__init__.py", "web/comfyq.js", "web/comfyq.json", ".comfyq-extension"] {
            #expect(FileManager.default.fileExists(atPath: folder + "/" + file), "\(file)")
        }
        let config = try JSONValue(parsing: try String(contentsOfFile: folder + "/web/comfyq.json", encoding: .utf8))
        #expect(config["serve"] == "http://127.0.0.1:9999", "\(config.serialized())")
        #expect(try String(contentsOfFile: folder + "/__init__.py", encoding: .utf8).contains("WEB_DIRECTORY = \"./web\""))
        // Again: replaced in place.
        #expect(try await runBinary(["comfyui", "install", comfy], environment: night.environment).status == .success)
        #expect(try JSONValue(parsing: try String(contentsOfFile: folder + "/web/comfyq.json", encoding: .utf8))["serve"] == "http://127.0.0.1:8190")
        // Removed, then nothing to remove.
        let uninstall = try await runBinary(["comfyui", "install", comfy, "--uninstall"], environment: night.environment)
        #expect(uninstall.status == .success && uninstall.stdout.contains("removed \(folder)"), "\(uninstall.stdout)\(uninstall.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder))
        let again = try await runBinary(["comfyui", "install", comfy, "--uninstall"], environment: night.environment)
        #expect(again.status == .success && again.stdout.contains("not installed, nothing to remove"), "\(again.stdout)")
        // A folder of the same name that is not comfyq's is left alone, both ways.
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "mine".write(toFile: folder + "/__init__.py", atomically: true, encoding: .utf8)
        for arguments in [["comfyui", "install", comfy], ["comfyui", "install", comfy, "--uninstall"]] {
            let refused = try await runBinary(arguments, environment: night.environment)
            #expect(refused.status == .failure && refused.stderr.contains("\(folder)") && refused.stderr.contains("not comfyq's extension"), "\(refused.stderr)")
            #expect(try String(contentsOfFile: folder + "/__init__.py", encoding: .utf8) == "mine")
        }
        // Not a ComfyUI folder; a wrong URL.
        let elsewhere = try await runBinary(["comfyui", "install", night.path("nothing")], environment: night.environment)
        #expect(elsewhere.status == .failure && elsewhere.stderr.contains("not a ComfyUI folder (it has no custom_nodes folder)"), "\(elsewhere.stderr)")
        let url = try await runBinary(["comfyui", "install", comfy, "--serve", "localhost:8190"], environment: night.environment)
        #expect(url.status == .usage && url.stderr.contains("--serve must be a URL"), "\(url.stderr)")
    }

    // MARK: In the page

    /// The page loads with the extension and says nothing on its console, with comfyq serve
    /// running and without; without, the comfyq tab says how to start it.
    @Test func thePageLoadsWithoutConsoleErrorsWithAndWithoutComfyq() async throws {
        let comfy = try await ComfyPage(serve: false)
        let browser = try await Browser.launch()
        try await comfy.open(in: browser)
        #expect(browser.consoleErrors.isEmpty, "\(browser.consoleErrors)")
        _ = try await browser.evaluate("app.extensionManager.command.execute('Workspace.ToggleSidebarTab.comfyq')")
        let off = try await eventually("the comfyq tab to say comfyq is not running", timeout: 20) {
            try await browser.evaluate("(document.querySelector('.comfyq-off') || {}).textContent || null").stringValue
        }
        #expect(off.contains("comfyq is not reachable at \(comfy.serveURL)") && off.contains("comfyq serve --allow-origin \(comfy.page)"), "\(off)")
        try await browser.screenshot("comfyui-without-comfyq")

        // Now with comfyq: the tab tried again shows the (empty) queue.
        try await comfy.startServe()
        _ = try await browser.evaluate("document.querySelector('.comfyq-side button').click()")
        _ = try await eventually("the comfyq tab to show the queue", timeout: 20) {
            try await browser.evaluate("(document.querySelector('.comfyq-side .comfyq-muted') || {}).textContent || null").stringValue
        }
        let fresh = try await Browser.launch()
        try await comfy.open(in: fresh)
        #expect(fresh.consoleErrors.isEmpty, "\(fresh.consoleErrors)")
    }

    /// The whole loop: a workflow in the page, the dialog opened with its key and filled in,
    /// the job added with the right item count, a run, the sidebar following it to done.
    @Test func aSweepQueuedFromThePageRunsAndTheSidebarFollowsIt() async throws {
        let comfy = try await ComfyPage()
        let browser = try await Browser.launch()
        try await comfy.open(in: browser)
        _ = try await browser.evaluate("app.loadGraphData(\(Self.workflow)).then(() => true)")
        // Alt+Shift+Q opens the dialog; it lists the inputs by their addresses.
        try await browser.press("Q", code: "KeyQ", modifiers: ["alt", "shift"])
        let rows = try await eventually(
            "the dialog's inputs", timeout: 20,
            describe: {
                (try? await browser.evaluate(
                    "JSON.stringify([!!document.querySelector('.comfyq-dialog'), document.activeElement.tagName, Array.from(document.querySelectorAll('[role=dialog]')).map(d => d.innerText.slice(0, 200))])"
                ))?.stringValue ?? "?"
            }
        ) { () -> JSONValue? in
            let rows = try await browser.evaluate("Array.from(document.querySelectorAll('.comfyq-dialog code')).map(c => c.textContent)")
            guard let list = rows.arrayValue, !list.isEmpty else { return nil }  // (not `? rows : nil`: JSONValue takes nil as null)
            return rows
        }
        #expect(rows.arrayValue?.contains("KSampler.cfg") == true && rows.arrayValue?.contains("KSampler.sampler_name") == true, "\(rows.serialized())")
        #expect(rows.arrayValue?.contains("KSampler.seed") == false, "the seed is swept by the seeds field: \(rows.serialized())")
        // The server's own samplers are offered for the sampler.
        let samplers = try await browser.evaluate("Array.from(document.querySelector('.comfyq-dialog select[data-address=\"KSampler.sampler_name\"]').options).map(o => o.value)")
        #expect(samplers.arrayValue?.contains("euler") == true && samplers.arrayValue?.contains("dpmpp_2m") == true, "\(samplers.serialized())")
        // Two seeds × cfg 5 and 7 × two samplers: 8 items, said before adding.
        _ = try await browser.evaluate(
            """
            (() => {
              const d = document.querySelector('.comfyq-dialog');
              const set = (selector, value) => { const e = d.querySelector(selector); e.value = value; e.dispatchEvent(new Event('input', {bubbles: true})); };
              set('input[name=name]', 'tonight');
              set('input[name=seed-count]', '2');
              set('input[name=seed-start]', '11');
              set('input[data-address="KSampler.cfg"]', '5, 7');
              const samplers = d.querySelector('select[data-address="KSampler.sampler_name"]');
              for (const o of samplers.options) o.selected = o.value === 'euler' || o.value === 'dpmpp_2m';
              samplers.dispatchEvent(new Event('change', {bubbles: true}));
              return true;
            })()
            """)
        #expect(try await browser.evaluate("document.querySelector('.comfyq-dialog .comfyq-count').textContent") == "8 items")
        try await browser.screenshot("comfyui-dialog")
        _ = try await browser.evaluate("document.querySelector('.comfyq-dialog .comfyq-queue').click()")
        let added = try await eventually("the job to be added", timeout: 30, describe: { (try? await browser.evaluate("document.querySelector('.comfyq-dialog').innerText"))?.stringValue ?? "?" }) {
            try await browser.evaluate("(document.querySelector('.comfyq-added') || {dataset: {}}).dataset.items || null").stringValue
        }
        #expect(added == "8")
        let queued = try await comfy.status()
        let job = queued["jobs"]?.arrayValue?.first { $0["name"] == "tonight" }
        #expect(job?["total"] == 8, "\(queued.serialized())")

        // The sidebar, then a run: it follows the job to done without a reload.
        _ = try await browser.evaluate("document.querySelector('.comfyq-dialog .comfyq-cancel').click()")
        #expect(try await browser.evaluate("!document.querySelector('.comfyq-dialog')") == true, "Close closes the dialog")
        _ = try await browser.evaluate("app.extensionManager.command.execute('Workspace.ToggleSidebarTab.comfyq')")
        let counts = "(document.querySelector('.comfyq-job[data-job=\"tonight\"] .comfyq-counts') || {}).textContent || null"
        _ = try await eventually("the sidebar to show the job", timeout: 20) { try await browser.evaluate(counts).stringValue == "0/8 done" ? true : nil }
        _ = try await browser.evaluate("window.comfyqMark = 1")
        let run = try await runBinary(["run", "--server", comfy.page, "--no-user-hooks"], environment: comfy.night.environment)
        #expect(run.status == .success, "\(run.stderr)")
        _ = try await eventually("the sidebar to show the job done", timeout: 30, describe: { (try? await browser.evaluate(counts))?.serialized() ?? "?" }) {
            try await browser.evaluate(counts).stringValue == "8/8 done" ? true : nil
        }
        #expect(try await browser.evaluate("window.comfyqMark") == 1, "the page was reloaded")
        try await browser.screenshot("comfyui-sidebar")

        // Each item ran with its sweep's values; the page's workflow is kept with the job.
        let items = try await runBinary(["status", "tonight", "--json"], environment: comfy.night.environment)
        let parameters = try JSONValue(parsing: items.stdout)["items"]?.arrayValue?.map { $0["parameters"] ?? .null } ?? []
        // (The seed under the address the job's seeds give it: the node's id, "3.seed".)
        let seeds = parameters.map { item in item.objectValue?.first { $0.0.hasSuffix(".seed") }?.1.numberValue?.int ?? 0 }
        #expect(parameters.count == 8 && seeds.sorted() == [11, 11, 11, 11, 12, 12, 12, 12], "\(parameters)")
        #expect(Set(parameters.compactMap { $0["KSampler.cfg"]?.numberValue?.double }) == [5, 7], "\(parameters)")
        #expect(Set(parameters.compactMap { $0["KSampler.sampler_name"]?.stringValue }) == ["euler", "dpmpp_2m"], "\(parameters)")
        let kept = try await ComfyPage.json(comfy.serveURL + "/jobs/tonight/page-workflow.json")
        let loaded = try JSONValue(parsing: Self.workflow)
        #expect(kept["nodes"]?.arrayValue?.count == loaded["nodes"]?.arrayValue?.count, "\(kept.serialized().prefix(200))")

        // From a script: the same, with its answer; and a job pre-flight refuses, one line each.
        let scripted = try await browser.evaluate("window.comfyq.queueBatch({name: 'scripted', seeds: {start: 1, count: 3}, priority: 5})")
        #expect(scripted["job"] == "scripted" && scripted["items"] == 3, "\(scripted.serialized())")
        let refused = try await browser.evaluate(
            "window.comfyq.queueBatch({name: 'typo', set: {'KSampler.sampler_name': 'eulr'}}).then(() => null, e => e.problems)")
        #expect(refused.arrayValue?.count == 1 && refused.arrayValue?.first?.stringValue?.contains("eulr") == true, "\(refused.serialized())")
        let jobs = try await comfy.status()["jobs"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(jobs.contains("scripted") && !jobs.contains("typo"), "\(jobs)")
        // Cancel from the sidebar, under serve's rules (this page's origin is allowed).
        let cancel = "document.querySelector('.comfyq-job[data-job=\"scripted\"] .comfyq-cancel-job')"
        _ = try await eventually("the sidebar to offer to cancel the scripted job", timeout: 20) { try await browser.evaluate("!!\(cancel)") == true ? true : nil }
        _ = try await browser.evaluate("\(cancel).click()")
        _ = try await eventually("the scripted job cancelled", timeout: 20) {
            let job = try await comfy.status()["jobs"]?.arrayValue?.first { $0["name"] == "scripted" }
            return job?["counts"]?["cancelled"] == 3 ? true : nil
        }
        #expect(browser.consoleErrors.isEmpty, "\(browser.consoleErrors)")
    }

    /// Only the configured origin may add a job: a page elsewhere is refused by the browser
    /// (the preflight) and by serve (its Origin), and nothing is added.
    @Test func aPageOnAnotherOriginCannotAddAJob() async throws {
        let comfy = try await ComfyPage()
        let job = #"{"name": "evil", "workflow": {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}}}}"#
        // The browser: a page served from another origin (another simulator) tries, both ways.
        let elsewhere = try startBinary(["simulate", "--port", "0", "--output", comfy.night.path("elsewhere")], environment: comfy.night.environment)
        let line = try await elsewhere.waitForOutput("the other origin to listen") { $0.contains("listening on") }
        let other = String(line.split(separator: "\n").first { $0.contains("listening on") }?.split(separator: " ").last ?? "")
        let browser = try await Browser.launch()
        try await browser.open(other + "/system_stats")
        let cors = try await browser.evaluate(
            "fetch('\(comfy.serveURL)/api/jobs', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(\(job))}).then(r => 'answered ' + r.status, e => 'blocked')")
        #expect(cors == "blocked", "\(cors)")
        let simple = try await browser.evaluate(
            "fetch('\(comfy.serveURL)/api/jobs', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: JSON.stringify(\(job))}).then(r => r.type, e => 'blocked')")
        #expect(simple == "opaque" || simple == "blocked", "\(simple)")
        // serve itself: the preflight and the POST of another origin are refused; its own origin's are not.
        let evilPreflight = try await ComfyPage.request(comfy.serveURL + "/api/jobs", method: "OPTIONS", headers: ["Origin": other, "Access-Control-Request-Method": "POST"])
        #expect(evilPreflight.status == 403 && evilPreflight.headers["access-control-allow-origin"] == nil, "\(evilPreflight)")
        let evilPost = try await ComfyPage.request(comfy.serveURL + "/api/jobs", method: "POST", body: job, headers: ["Origin": other, "Content-Type": "text/plain"])
        #expect(evilPost.status == 403, "\(evilPost)")
        let preflight = try await ComfyPage.request(comfy.serveURL + "/api/jobs", method: "OPTIONS", headers: ["Origin": comfy.page, "Access-Control-Request-Method": "POST"])
        #expect(preflight.status == 204 && preflight.headers["access-control-allow-origin"] == comfy.page, "\(preflight)")
        #expect(preflight.headers["access-control-allow-methods"] == "GET, POST")
        let own = try await ComfyPage.request(comfy.serveURL + "/api/jobs", method: "POST", body: #"{"name": "x"}"#, headers: ["Origin": comfy.page])
        #expect(own.status == 400 && own.body.contains("workflow: required") && own.headers["access-control-allow-origin"] == comfy.page, "\(own)")
        let jobs = try await comfy.status()["jobs"]?.arrayValue ?? []
        #expect(jobs.isEmpty, "\(jobs)")
    }

    /// With a token, even the allowed origin must send it.
    @Test func withATokenTheAllowedOriginSendsItToo() async throws {
        let comfy = try await ComfyPage(token: "s3cret")
        let body = #"{"name": "x"}"#
        let without = try await ComfyPage.request(comfy.serveURL + "/api/jobs", method: "POST", body: body, headers: ["Origin": comfy.page])
        #expect(without.status == 403 && without.headers["access-control-allow-origin"] == comfy.page, "\(without)")
        let with = try await ComfyPage.request(
            comfy.serveURL + "/api/jobs", method: "POST", body: body, headers: ["Origin": comfy.page, "Authorization": "Bearer s3cret"])
        #expect(with.status == 400 && with.body.contains("workflow: required"), "\(with)")
    }
}
