import Foundation

/// Previews of the images being sampled, kept as files for hooks (`e.preview`).
extension Runner {
    /// The latest preview of a prompt, written where hooks find it.
    func keepPreview(_ promptID: String, mimeType: String, image: [UInt8]) async {
        guard inFlight[promptID] != nil else { return }
        let path = "\(options.stateFolder)/previews/\(promptID).\(mimeType == "image/png" ? "png" : "jpg")"
        do {
            try await Self.writePreview(image, to: path)
        } catch {
            if !previewWriteFailed { continuation.yield(.message("previews: cannot write \(path): \(error.localizedDescription)")) }
            previewWriteFailed = true
            return
        }
        // Ended while it was written: its preview goes with it.
        guard inFlight[promptID] != nil else {
            Self.removePreview(path)
            return
        }
        inFlight[promptID]?.preview = path
    }

    /// Writes a preview where hooks find it (`preview` in their events), replacing the last.
    nonisolated static func writePreview(_ image: [UInt8], to path: String) async throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(image).write(to: url, options: .atomic)
    }

    /// Previews a run that died left behind (a day old: another run's are newer).
    nonisolated static func removeStalePreviews(in folder: String, now: Double) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
            let path = folder + "/" + name
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                now - modified.timeIntervalSince1970 > 86_400
            else { continue }
            removePreview(path)
        }
    }

    /// A preview is a convenience: one that cannot be removed is left for the next run's clean-up.
    nonisolated static func removePreview(_ path: String) {
        do { try FileManager.default.removeItem(atPath: path) } catch {}
    }
}
