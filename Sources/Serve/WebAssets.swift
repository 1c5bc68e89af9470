import ComfyCore
import HTTPServer

/// The browser code of comfyq's pages (Web/: the page template, the style sheet, the scripts),
/// built into the binary: a single installed `comfyq` serves everything, and a report carries
/// what it needs inside its page.
package enum WebAssets {
    package struct Asset: Sendable {
        package let bytes: [UInt8]
        package let contentType: String
        /// Changes when the content does: served URLs carry it, so a browser may keep an asset
        /// for as long as it likes and still never runs an old script against a new server.
        package let version: String

        init(_ name: String, _ bytes: [UInt8]) {
            self.bytes = bytes
            contentType = InputFile.mediaType(name)
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            version = String(hash, radix: 36)
        }

        package var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// By file name, as served under `/assets/`.
    package static let all: [String: Asset] = [
        "comfyq.css": Asset("comfyq.css", PackageResources.comfyq_css),
        "live.js": Asset("live.js", PackageResources.live_js),
        "grid.js": Asset("grid.js", PackageResources.grid_js),
        "viewer.js": Asset("viewer.js", PackageResources.viewer_js),
        "compare.js": Asset("compare.js", PackageResources.compare_js),
    ]

    /// The page every page is made from: `{{title}}`, `{{home}}`, `{{head}}`, `{{body}}`, `{{scripts}}`.
    package static let page = Template(String(decoding: PackageResources.page_html, as: UTF8.self))

    /// `/assets/NAME?v=VERSION`.
    package static func url(_ name: String) -> String { "/assets/\(name)?v=\(all[name]?.version ?? "0")" }

    /// `GET /assets/NAME`: the file, kept by the browser (its URL changes with it).
    package static func response(_ name: String) -> HTTPResponse? {
        guard let asset = all[name] else { return nil }
        return HTTPResponse(status: 200, contentType: asset.contentType, body: asset.bytes, headers: [("Cache-Control", "max-age=86400")])
    }
}

/// A page template with `{{name}}` slots, filled in one pass: what is put in a slot is never
/// read for slots itself (a job named `{{body}}` stays a name).
package struct Template: Sendable {
    private enum Part: Sendable {
        case text(String)
        case slot(String)
    }

    private let parts: [Part]

    package init(_ text: String) {
        var parts: [Part] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            parts.append(.text(String(rest[..<open.lowerBound])))
            parts.append(.slot(String(rest[open.upperBound..<close.lowerBound])))
            rest = rest[close.upperBound...]
        }
        parts.append(.text(String(rest)))
        self.parts = parts
    }

    /// The template with each slot replaced by its value (an unknown slot by nothing).
    package func render(_ values: [String: String]) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .text(let text): out += text
            case .slot(let name): out += values[name] ?? ""
            }
        }
        return out
    }
}
