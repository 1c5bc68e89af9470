import ComfyCore
import Foundation
import HTTPServer

/// ComfyUI's own page on the simulator: its frontend's files (`--front-end-root`), the routes
/// the page asks for at load (ComfyUI 0.3.64 and 0.38 answer them as here; see
/// `frontend-1.58-routes.md` in the reference material), and the extensions of a `custom_nodes`
/// folder, found and listed as ComfyUI's `nodes.py` and `server.py` do.
extension Simulator {
    /// The page's routes other than the prompt API (nil: not one of them).
    func pageRoute(_ request: HTTPRequest, path: String, body: JSONValue?) -> HTTPResponse? {
        switch (request.method, path) {
        case ("GET", "/users"): return json(["storage": "server", "migrated": true])
        case ("GET", "/settings"): return json(.object(state.withLock { $0.settings }))
        case ("GET", _) where path.hasPrefix("/settings/"):
            let id = String(path.dropFirst("/settings/".count)).removingPercentEncoding ?? ""
            return json(state.withLock { $0.settings[id] } ?? .null)
        case ("POST", "/settings"):
            // Several at once: an object of setting → value.
            guard let values = body?.objectValue else { return json(["error": "settings: an object of setting → value"], status: 400) }
            state.withLock { state in for (key, value) in values { state.settings[key] = value } }
            return HTTPResponse(status: 200, contentType: "text/plain")
        case ("POST", _) where path.hasPrefix("/settings/"):
            let id = String(path.dropFirst("/settings/".count)).removingPercentEncoding ?? ""
            state.withLock { $0.settings[id] = body ?? .null }
            return HTTPResponse(status: 200, contentType: "text/plain")
        case ("GET", "/extensions"): return json(.array(extensionScripts().map { .string($0) }))
        case ("GET", "/i18n"), ("GET", "/workflow_templates"): return json([:])
        case ("GET", "/experiment/models"):
            return json(.array(["checkpoints", "loras", "vae", "upscale_models", "controlnet"].map { ["name": .string($0), "folders": []] }))
        case ("GET", "/templates/index.json") where options.frontEndRoot != nil: return json([])
        case ("GET", "/node_replacements") where options.profile == .v0_38: return json([:])
        case ("GET", _) where path.hasPrefix("/internal/files/"):
            // ComfyUI's internal route: the files of the input, output or temp folder, by name.
            let folder = String(path.dropFirst("/internal/files/".count))
            guard ["input", "output", "temp"].contains(folder) else { return json(["error": "Invalid directory type"], status: 400) }
            return json(.array((folder == "input" ? inputFiles() : []).map { .string($0) }))
        default: return nil
        }
    }

    /// Every script the page imports at load: the frontend's own `extensions/**/*.js`, then each
    /// custom node's web directory's, as `/extensions/NODE/PATH`.
    func extensionScripts() -> [String] {
        var scripts: [String] = []
        if let root = options.frontEndRoot {
            scripts += Self.scripts(under: root + "/extensions").map { "/extensions/" + $0 }
        }
        for (name, folder) in customNodeWebFolders() {
            let node = name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name
            scripts += Self.scripts(under: folder).map { "/extensions/\(node)/" + $0 }
        }
        return scripts
    }

    /// Custom node name → its web directory: the `WEB_DIRECTORY` its `__init__.py` sets.
    func customNodeWebFolders() -> [(String, String)] {
        guard let root = options.customNodes, let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        var folders: [(String, String)] = []
        for name in names.sorted() where !name.hasPrefix(".") && !name.hasSuffix(".disabled") {
            guard let source = try? String(contentsOfFile: "\(root)/\(name)/__init__.py", encoding: .utf8),
                let web = Self.webDirectory(in: source)
            else { continue }
            folders.append((name, URL(fileURLWithPath: "\(root)/\(name)/\(web)").standardizedFileURL.path))
        }
        return folders
    }

    /// `WEB_DIRECTORY = "./web"` in a custom node's `__init__.py`.
    static func webDirectory(in source: String) -> String? {
        for line in source.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("WEB_DIRECTORY"), let equals = text.firstIndex(of: "=") else { continue }
            let value = text[text.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard let quote = value.first, quote == "\"" || quote == "'", value.count >= 2, value.last == quote else { continue }
            return String(value.dropFirst().dropLast())
        }
        return nil
    }

    /// The `.js` files under `folder`, relative to it, sorted.
    static func scripts(under folder: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".js") }.sorted()
    }

    /// A file of the frontend, or of a custom node's web directory (`/extensions/NODE/…`). No
    /// path leaves its folder: `..` and absolute parts find nothing.
    func staticFile(_ request: HTTPRequest) -> HTTPResponse? {
        guard let root = options.frontEndRoot else { return nil }
        let path = request.path.removingPercentEncoding ?? request.path
        let parts = path.split(separator: "/").map(String.init)
        guard !parts.contains(where: { $0 == ".." || $0 == "." || $0.contains("\\") }) else { return nil }
        var file = root + "/" + (parts.isEmpty ? "index.html" : parts.joined(separator: "/"))
        if parts.count >= 3, parts[0] == "extensions", let folder = customNodeWebFolders().first(where: { $0.0 == parts[1] })?.1 {
            file = folder + "/" + parts[2...].joined(separator: "/")
        }
        var directory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &directory), !directory.boolValue,
            let data = FileManager.default.contents(atPath: file)
        else { return nil }
        return HTTPResponse(status: 200, contentType: InputFile.mediaType(file), body: [UInt8](data), headers: [("Cache-Control", "no-cache")])
    }
}
