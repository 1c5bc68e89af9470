import ComfyClient
import ComfyCore
import Foundation
import WebSocket

/// Why an output could not be saved: the path and the reason, in one line.
struct OutputError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Downloads a finished prompt's outputs under the job's naming template, with a sidecar each.
enum OutputWriter {
    struct Saved {
        var path: String
        var size: Int64
    }

    static func save(_ files: [OutputFile], for flight: InFlight, api: ComfyAPI, overwrite: Bool, server: String) async throws -> [Saved] {
        let folder = URL(fileURLWithPath: flight.outputFolder).standardizedFileURL
        var saved: [Saved] = []
        for (offset, file) in files.enumerated() {
            let values = templateValues(flight, number: offset + 1)
            var relative = OutputTemplate.render(flight.template, values: values)
            // Whatever the server calls the file, only its extension is kept.
            let ext = (file.filename as NSString).pathExtension
            let cleanExt = OutputTemplate.sanitize(ext.isEmpty ? "png" : ext)
            if files.count > 1 && !flight.template.contains("{n}") { relative += "_\(offset + 1)" }
            let target = folder.appendingPathComponent(relative + "." + cleanExt).standardizedFileURL
            guard target.path.hasPrefix(folder.path + "/") else {
                throw OutputError(message: "\(target.path): outside the output folder \(folder.path)")
            }
            let directory = target.deletingLastPathComponent()
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw OutputError(message: "\(directory.path): cannot create the folder (\(error.localizedDescription))")
            }
            let partial = directory.appendingPathComponent(".comfyq-partial-\(UUID().uuidString)")
            let size: Int64
            do {
                size = try await api.download(file, to: partial)
            } catch {
                try? FileManager.default.removeItem(at: partial)
                throw OutputError(message: "\(target.path): download failed: \(error)")
            }
            let final = try place(partial, at: target, overwrite: overwrite)
            try writeSidecar(for: final, flight: flight, file: file, server: server)
            saved.append(Saved(path: final.path, size: size))
        }
        return saved
    }

    /// Renames the finished download into place: never over an existing file unless asked, but
    /// beside it as `name-1.png`, `name-2.png`, ….
    static func place(_ partial: URL, at target: URL, overwrite: Bool) throws -> URL {
        var candidate = target
        var counter = 0
        let base = target.deletingPathExtension().lastPathComponent
        let ext = target.pathExtension
        let manager = FileManager.default
        while true {
            if overwrite, counter == 0 { try? manager.removeItem(at: candidate) }
            if !manager.fileExists(atPath: candidate.path) {
                do {
                    // link + unlink: a rename that cannot replace a file someone else just made.
                    try manager.linkItem(at: partial, to: candidate)
                    try? manager.removeItem(at: partial)
                    return candidate
                } catch where manager.fileExists(atPath: candidate.path) {
                    // Lost a race for the name: try the next one.
                } catch {
                    try? manager.removeItem(at: partial)
                    throw OutputError(message: "\(candidate.path): cannot write (\(error.localizedDescription))")
                }
            }
            counter += 1
            candidate = target.deletingLastPathComponent().appendingPathComponent("\(base)-\(counter).\(ext)")
        }
    }

    static func writeSidecar(for output: URL, flight: InFlight, file: OutputFile, server: String) throws {
        let sidecar = output.deletingPathExtension().appendingPathExtension("json")
        var timings = JSONObject()
        for (phase, seconds) in flight.timings.sorted(by: { $0.key < $1.key }) { timings[phase] = .double((seconds * 1000).rounded() / 1000) }
        let document: JSONValue = [
            "schema": 1, "job": .string(flight.jobName), "item": .int(flight.index), "prompt_id": .string(flight.promptID),
            "server": .string(server), "parameters": flight.parameters, "seed": seed(flight).map { .string($0) } ?? .null,
            "workflow_sha1": .string(SHA1.hash(Array(flight.workflowText.utf8)).map { String(format: "%02x", $0) }.joined()),
            "timings": .object(timings), "attempt": .int(flight.attempts),
            "source": ["filename": .string(file.filename), "subfolder": .string(file.subfolder), "type": .string(file.type)],
            "saved_at": .string(ISO8601DateFormatter().string(from: Date())),
        ]
        do {
            try Data(document.serialized(pretty: true).utf8).write(to: sidecar, options: .atomic)
        } catch {
            throw OutputError(message: "\(sidecar.path): cannot write the sidecar (\(error.localizedDescription))")
        }
    }

    static func seed(_ flight: InFlight) -> String? {
        for (written, value) in flight.parameters.objectValue ?? JSONObject() where written.hasSuffix(".seed") || written.hasSuffix(".noise_seed") {
            return value.numberValue?.literal ?? value.stringValue
        }
        return nil
    }

    static func templateValues(_ flight: InFlight, number: Int) -> [String: String] {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        var values: [String: String] = [
            "job": flight.jobName, "index": String(flight.index), "n": String(number), "item": "\(flight.jobName)_\(flight.index)",
            "date": formatter.string(from: Date()), "seed": seed(flight) ?? "",
        ]
        for (written, value) in flight.parameters.objectValue ?? JSONObject() {
            let text = value.stringValue ?? value.serialized()
            values[written] = text
            if let dot = written.lastIndex(of: ".") { values[String(written[written.index(after: dot)...])] = text }
        }
        return values
    }
}
