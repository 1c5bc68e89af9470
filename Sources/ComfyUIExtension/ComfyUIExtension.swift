import ComfyCore
import Foundation

/// The ComfyUI extension shipped with comfyq: a custom-node folder (Files/, built into the
/// binary) whose web directory adds "Queue as comfyq batch…" and a comfyq sidebar tab to
/// ComfyUI's page. `comfyq comfyui install` writes it into ComfyUI's `custom_nodes/comfyq`.
package enum ComfyUIExtension {
    /// Its folder in `custom_nodes`.
    package static let folderName = "comfyq"
    /// Marks a folder as this extension's, so `--uninstall` never removes anything else.
    package static let marker = ".comfyq-extension"

    /// Each file of the folder: its path in it, and its content.
    package static let files: [(path: String, bytes: [UInt8])] = [
        ("__init__.py", PackageResources.extension_init_py),
        ("web/comfyq.js", PackageResources.extension_js),
    ]

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    /// `COMFYUI/custom_nodes/comfyq`.
    package static func folder(in comfyUI: String) -> String {
        URL(fileURLWithPath: comfyUI).appendingPathComponent("custom_nodes").appendingPathComponent(folderName).standardizedFileURL.path
    }

    /// Writes the extension into `comfyUI`'s `custom_nodes` (replacing an earlier version of
    /// it), with `web/comfyq.json` saying where `comfyq serve` is. Returns its folder. A
    /// `custom_nodes/comfyq` that is not this extension is left alone, and said.
    @discardableResult
    package static func install(comfyUI: String, serve: String, version: String) throws(Failure) -> String {
        let nodes = URL(fileURLWithPath: comfyUI).appendingPathComponent("custom_nodes").standardizedFileURL.path
        var directory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: nodes, isDirectory: &directory), directory.boolValue else {
            throw Failure(description: "\(comfyUI): not a ComfyUI folder (it has no custom_nodes folder)")
        }
        let target = folder(in: comfyUI)
        if FileManager.default.fileExists(atPath: target), !FileManager.default.fileExists(atPath: target + "/" + marker) {
            throw Failure(description: "\(target) exists and is not comfyq's extension: move it away, or install by hand")
        }
        var config: JSONObject = ["serve": .string(serve)]
        if !version.isEmpty { config["version"] = .string(version) }
        let contents = files + [
            ("web/comfyq.json", Array((JSONValue.object(config).serialized() + "\n").utf8)),
            (marker, Array("comfyq\(version.isEmpty ? "" : " " + version): written by `comfyq comfyui install`; `comfyq comfyui install --uninstall` removes this folder\n".utf8)),
        ]
        do {
            for (path, bytes) in contents {
                let file = URL(fileURLWithPath: target).appendingPathComponent(path)
                try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(bytes).write(to: file, options: .atomic)
            }
        } catch {
            throw Failure(description: "\(target): cannot write the extension (\(error.localizedDescription))")
        }
        return target
    }

    /// Removes the extension from `comfyUI`'s `custom_nodes`; returns its folder, or nil when it
    /// was not there. A `custom_nodes/comfyq` that is not this extension is left alone, and said.
    package static func uninstall(comfyUI: String) throws(Failure) -> String? {
        let target = folder(in: comfyUI)
        guard FileManager.default.fileExists(atPath: target) else { return nil }
        guard FileManager.default.fileExists(atPath: target + "/" + marker) else {
            throw Failure(description: "\(target) is not comfyq's extension (no \(marker) in it): left as it is")
        }
        do { try FileManager.default.removeItem(atPath: target) } catch {
            throw Failure(description: "\(target): cannot remove it (\(error.localizedDescription))")
        }
        return target
    }
}
