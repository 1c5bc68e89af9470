import ComfyCore
import Foundation
import TestSupport
import WebSocket

/// Headless Chromium driven over the DevTools protocol with our own WebSocket client: load a
/// page, read its DOM with JavaScript, switch colour scheme and viewport, take screenshots.
final class Browser: @unchecked Sendable {
    /// The browser `scripts/setup.sh` installs (Debian's `chromium`), if it is here.
    static let executable: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static var available: Bool { executable != nil }

    /// Where screenshots go for people to look at: `.build/screenshots/`.
    static let screenshots = Paths.packageRoot.appendingPathComponent(".build/screenshots")

    private let process: Process
    private let profile: URL
    private let page: WebSocketClient
    private var messages: AsyncThrowingStream<WebSocketMessage, any Error>.AsyncIterator
    private var nextID = 0

    struct Failure: Error, CustomStringConvertible {
        var description: String

        /// A navigation took the document away while it was being asked (Chromium's answers
        /// for an evaluation the old page did not live to finish).
        var navigationCutIn: Bool {
            ["Inspected target navigated or closed", "Execution context was destroyed", "Cannot find context with specified id"]
                .contains { description.contains($0) }
        }
    }

    /// The page's DevTools session, on the browser's connection.
    private var session: String?

    private init(process: Process, profile: URL, page: WebSocketClient) {
        self.process = process
        self.profile = profile
        self.page = page
        messages = page.messages.makeAsyncIterator()
    }

    static func launch() async throws -> Browser {
        guard let executable else { throw Failure(description: "chromium is not installed (scripts/setup.sh installs it)") }
        let profile = TestFolder.root.appendingPathComponent("comfyq-chromium-\(UUID())")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let log = profile.appendingPathComponent("stderr.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
            "--remote-debugging-port=0", "--user-data-dir=\(profile.path)", "--window-size=1280,900", "about:blank",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log.path)
        try process.run()
        do {
            // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on its stderr.
            let socketURL = try await eventually("chromium's DevTools endpoint", timeout: 30, describe: { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }) {
                () -> String? in
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                guard let range = text.range(of: "DevTools listening on ") else { return nil }
                return String(text[range.upperBound...].prefix { !$0.isWhitespace })
            }
            var options = WebSocketOptions()
            options.maximumMessageSize = 256 << 20
            let connection = try await WebSocketClient.connect(to: try WebSocketURL(socketURL), options: options)
            let browser = Browser(process: process, profile: profile, page: connection)
            // A page of our own, attached as a flat session on the browser's connection.
            let target = try await browser.call("Target.createTarget", ["url": "about:blank"])
            let attached = try await browser.call("Target.attachToTarget", ["targetId": target["targetId"] ?? .null, "flatten": true])
            browser.session = attached["sessionId"]?.stringValue
            return browser
        } catch {
            process.terminate()
            throw error
        }
    }

    deinit {
        page.abort()
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: profile)
    }

    /// One DevTools call, answered by the message with its id (events in between are skipped).
    @discardableResult
    func call(_ method: String, _ params: JSONObject = [:]) async throws -> JSONValue {
        nextID += 1
        let id = nextID
        var request: JSONObject = ["id": .int(id), "method": .string(method), "params": .object(params)]
        if let session { request["sessionId"] = .string(session) }
        do {
            try page.send(.text(JSONValue.object(request).serialized()))
            while let message = try await messages.next() {
                guard case .text(let text) = message, let answer = try? JSONValue(parsing: text) else { continue }
                record(answer)
                guard answer["id"] == .int(id) else { continue }
                if let error = answer["error"] { throw Failure(description: "\(method): \(error.serialized())") }
                return answer["result"] ?? .null
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(method): \(error); \(browserState())")
        }
        throw Failure(description: "\(method): the browser closed the connection; \(browserState())")
    }

    /// What the page said on its console as errors, and the exceptions nothing caught, in order
    /// (after `watchConsole`; read as the events arrive during later calls).
    private(set) var consoleErrors: [String] = []

    /// Starts recording the page's console errors and uncaught exceptions (`consoleErrors`).
    func watchConsole() async throws {
        try await call("Runtime.enable")
    }

    private func record(_ event: JSONValue) {
        switch event["method"]?.stringValue {
        case "Runtime.consoleAPICalled" where ["error", "assert"].contains(event["params"]?["type"]?.stringValue ?? ""):
            let args = event["params"]?["args"]?.arrayValue ?? []
            consoleErrors.append("console.error: " + args.map { $0["value"]?.stringValue ?? $0["description"]?.stringValue ?? $0.serialized() }.joined(separator: " "))
        case "Runtime.exceptionThrown":
            let details = event["params"]?["exceptionDetails"]
            consoleErrors.append("uncaught: " + (details?["exception"]?["description"]?.stringValue ?? details?["text"]?.stringValue ?? "?"))
        default:
            break
        }
    }

    /// Presses a key with modifiers (`alt`, `shift`, `ctrl`), as a user would.
    func press(_ key: String, code: String, modifiers: Set<String>) async throws {
        let bits = (modifiers.contains("alt") ? 1 : 0) | (modifiers.contains("ctrl") ? 2 : 0) | (modifiers.contains("shift") ? 8 : 0)
        let keyCode = Int(key.uppercased().unicodeScalars.first?.value ?? 0)
        for type in ["rawKeyDown", "keyUp"] {
            try await call(
                "Input.dispatchKeyEvent",
                ["type": .string(type), "key": .string(key), "code": .string(code), "windowsVirtualKeyCode": .int(keyCode), "modifiers": .int(bits)])
        }
    }

    /// Whether Chromium is still running, and the end of what it printed: why a connection went.
    private func browserState() -> String {
        let status = process.isRunning ? "chromium is running" : "chromium exited with status \(process.terminationStatus)"
        let log = (try? String(contentsOf: profile.appendingPathComponent("stderr.log"), encoding: .utf8)) ?? ""
        return status + (page.closeCode.map { ", close code \($0) \(page.closeReason)" } ?? "")
            + "; its last output: " + log.split(separator: "\n").suffix(5).joined(separator: " | ")
    }

    /// Evaluates `expression` in the page and returns its value (promises awaited).
    func evaluate(_ expression: String) async throws -> JSONValue {
        let result = try await call("Runtime.evaluate", ["expression": .string(expression), "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] { throw Failure(description: "\(expression): \(exception.serialized())") }
        return result["result"]?["value"] ?? .null
    }

    /// `evaluate`, while the page may be navigating: nil when the navigation cut the evaluation
    /// off (ask again), any other failure thrown.
    func evaluateWhileNavigating(_ expression: String) async throws -> JSONValue? {
        do {
            return try await evaluate(expression)
        } catch let failure as Failure where failure.navigationCutIn {
            return nil
        }
    }

    /// Presses a key in the page (`ArrowRight`, `Escape`, `s`…) as a user would.
    func press(_ key: String) async throws {
        let codes = ["ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39, "ArrowDown": 40, "Home": 36, "End": 35, "Escape": 27]
        var event: JSONObject = ["key": .string(key)]
        if let code = codes[key] {
            event["windowsVirtualKeyCode"] = .int(code)
            event["code"] = .string(key)
        } else {
            event["text"] = .string(key)
            event["windowsVirtualKeyCode"] = .int(Int(key.uppercased().unicodeScalars.first?.value ?? 0))
        }
        var down = event
        down["type"] = codes[key] == nil ? "keyDown" : "rawKeyDown"
        try await call("Input.dispatchKeyEvent", down)
        var up = event
        up["type"] = "keyUp"
        up["text"] = nil
        try await call("Input.dispatchKeyEvent", up)
    }

    /// Waits until the page's path (and query) is `path` and it has loaded.
    func waitFor(path: String) async throws {
        _ = try await eventually("the page \(path)", timeout: 20, describe: { (try? await self.evaluateWhileNavigating("location.pathname + location.search"))??.stringValue ?? "?" }) {
            let state = try await self.evaluateWhileNavigating("location.pathname + location.search + ' ' + document.readyState")
            return state?.stringValue == "\(path) complete" ? true : nil
        }
    }

    /// Loads `url` and waits until the document has loaded, with its images.
    /// Waits until the viewer (Web/viewer.js) is at `path` and shows its item: the picture
    /// loaded, or the item's state for one without.
    func waitForView(_ path: String) async throws {
        let index = path.split(separator: "/").last.map(String.init) ?? ""
        let probe = """
            (function () { var v = document.querySelector('.viewer'), img = document.querySelector('.stage img'), p = document.querySelector('.stage p');
              return location.pathname + ' ' + (v ? v.dataset.item : '-') + ' ' + ((img && img.complete && img.naturalWidth > 0) || !!p); })()
            """
        _ = try await eventually("the viewer at \(path)", timeout: 20, describe: { (try? await self.evaluateWhileNavigating(probe))??.stringValue ?? "?" }) {
            try await self.evaluateWhileNavigating(probe)?.stringValue == "\(path) \(index) true" ? true : nil
        }
    }

    func open(_ url: String) async throws {
        try await call("Page.navigate", ["url": .string(url)])
        _ = try await eventually("\(url) to load", timeout: 20) {
            let state = try await self.evaluateWhileNavigating("location.href + ' ' + document.readyState")
            return state?.stringValue == "\(url) complete" ? true : nil
        }
    }

    /// `dark`: the page sees `prefers-color-scheme: dark`.
    func colourScheme(dark: Bool) async throws {
        try await call("Emulation.setEmulatedMedia", ["features": [["name": "prefers-color-scheme", "value": dark ? "dark" : "light"]]])
    }

    /// A phone-sized viewport (or back to the window's size with nil).
    func viewport(width: Int?) async throws {
        if let width {
            try await call("Emulation.setDeviceMetricsOverride", ["width": .int(width), "height": 800, "deviceScaleFactor": 2, "mobile": true])
        } else {
            try await call("Emulation.clearDeviceMetricsOverride")
        }
    }

    /// Writes a PNG of the whole page to `.build/screenshots/NAME.png`; returns its path.
    @discardableResult
    func screenshot(_ name: String) async throws -> String {
        let result = try await call("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": true])
        guard let base64 = result["data"]?.stringValue, let data = Data(base64Encoded: base64) else { throw Failure(description: "no screenshot data") }
        try FileManager.default.createDirectory(at: Self.screenshots, withIntermediateDirectories: true)
        let url = Self.screenshots.appendingPathComponent("\(name).png")
        try data.write(to: url)
        return url.path
    }
}
