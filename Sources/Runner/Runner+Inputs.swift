import ComfyClient
import ComfyCore
import Foundation
import InputFiles
import QueueStore

/// An input file as submitted: where it came from, what it was, what the server calls it.
struct UsedInput: Sendable, Equatable {
    var address: String
    var path: String
    var sha256: String
    /// The input's value on the server (`comfyq/NAME`).
    var uploadedAs: String
    var mask: (path: String, sha256: String)?

    static func == (lhs: UsedInput, rhs: UsedInput) -> Bool {
        lhs.address == rhs.address && lhs.path == rhs.path && lhs.sha256 == rhs.sha256 && lhs.uploadedAs == rhs.uploadedAs
            && lhs.mask?.path == rhs.mask?.path && lhs.mask?.sha256 == rhs.mask?.sha256
    }

    /// As sidecars, events and hooks show it.
    var json: JSONValue {
        var object: JSONObject = [
            "input": .string(address), "path": .string(path), "sha256": .string(sha256), "uploaded_as": .string(uploadedAs),
        ]
        if let mask { object["mask"] = ["path": .string(mask.path), "sha256": .string(mask.sha256)] }
        return .object(object)
    }
}

/// Input files at submit: each checked against what `add` recorded, hashed, uploaded to the
/// server that runs the item unless the queue knows it has them, and the item's inputs set to
/// what the server answered.
extension Runner {
    enum InputsOutcome {
        /// Every input is on the server; the graph refers to them.
        case ready(Workflow)
        /// The item ended (failed, put back) or is no longer wanted: nothing to submit.
        case ended
    }

    /// A file's content, read and hashed off the runner's actor.
    struct PreparedFile: Sendable {
        var sha256: String
        var bytes: [UInt8]
    }

    func uploadInputs(_ promptID: String, workflow: Workflow, on server: Int) async -> InputsOutcome {
        guard let flight = inFlight[promptID] else { return .ended }
        var workflow = workflow
        var used: [UsedInput] = []
        var freshly: [Bool] = []
        let resolver = AddressResolver(workflow: workflow)
        let serverKey = servers[server].definition.url
        for (address, file) in InputFile.all(in: flight.parameters) {
            // Still the file `add` saw?
            if let change = Self.changed(file.path, size: file.size, modified: file.modified)
                ?? file.mask.flatMap({ Self.changed($0.path, size: $0.size, modified: $0.modified) })
            {
                end(promptID, .input(change))
                return .ended
            }
            // Hashed once per file and version (the content is read again only to upload it).
            let sha256: String
            var maskSHA256: String?
            do {
                sha256 = try await hash(file.path, size: file.size, modified: file.modified)
                if let maskFile = file.mask { maskSHA256 = try await hash(maskFile.path, size: maskFile.size, modified: maskFile.modified) }
            } catch {
                end(promptID, .input("\(error)"))
                return .ended
            }
            guard stillPreparing(promptID) else { return .ended }
            let key = maskSHA256.map { sha256 + "+mask:" + $0 } ?? sha256
            var value: String?
            var fresh = false
            do {
                value = try queue.uploaded(server: serverKey, key: key)
            } catch {
                queueFailed(error, doing: "read")
                putBackUnspent(promptID, reason: "the queue cannot be read")
                return .ended
            }
            if value == nil {
                let prepared: PreparedFile
                var mask: PreparedFile?
                do {
                    prepared = try await files.read(file.path)
                    if let maskFile = file.mask { mask = try await files.read(maskFile.path, asMask: true) }
                } catch {
                    end(promptID, .input("\(error)"))
                    return .ended
                }
                guard prepared.sha256 == sha256, mask?.sha256 == maskSHA256 else {
                    end(promptID, .input("\(file.path): the input file changed while it was being uploaded; add the job again to use the new file"))
                    return .ended
                }
                guard stillPreparing(promptID) else { return .ended }
                switch await upload(prepared, mask: mask, file: file, key: key, promptID: promptID, server: server) {
                case .some(let uploaded): value = uploaded
                case .none: return .ended
                }
                fresh = true
            }
            guard let value, stillPreparing(promptID) else { return .ended }
            if case .success(let target) = resolver.resolve(address) { workflow.set(node: target.nodeID, input: target.input, to: .string(value)) }
            let input = UsedInput(
                address: address, path: file.path, sha256: sha256, uploadedAs: value, mask: file.mask.map { ($0.path, maskSHA256 ?? "") })
            used.append(input)
            freshly.append(fresh)
        }
        guard var current = inFlight[promptID] else { return .ended }
        // Hooks, sidecars and events see each file's SHA-256 and server name in its parameter.
        var parameters = current.parameters.objectValue ?? JSONObject()
        for input in used {
            guard var object = parameters[input.address]?.objectValue else { continue }
            object["sha256"] = .string(input.sha256)
            object["uploaded_as"] = .string(input.uploadedAs)
            parameters[input.address] = .object(object)
        }
        current.parameters = .object(parameters)
        current.inputs = used
        current.workflow = workflow
        inFlight[promptID] = current
        let events = zip(used, freshly).map { input, fresh -> JSONValue in
            var object = input.json.objectValue ?? JSONObject()
            object["uploaded"] = .bool(fresh)
            return .object(object)
        }
        continuation.yield(.inputs(item: current.label, server: servers[server].name, inputs: events))
        return .ready(workflow)
    }

    /// Uploads one file (and its mask) to the server and records it; nil when the item ended.
    private func upload(_ file: PreparedFile, mask: PreparedFile?, file input: InputFile, key: String, promptID: String, server: Int) async -> String? {
        let slot = servers[server]
        let limit: Int64?
        if let known = slot.maxUploadSize {
            limit = known
        } else {
            do {
                limit = try await slot.api.maxUploadSize() ?? Int64.max
            } catch {
                uploadFailed(promptID, error, server: server)
                return nil
            }
            servers[server].maxUploadSize = limit
        }
        guard stillPreparing(promptID) else { return nil }
        if let limit, Int64(file.bytes.count) > limit {
            end(promptID, .input("\(input.path): \(file.bytes.count) bytes, more than \(slot.name)'s max_upload_size (\(limit) bytes)"))
            return nil
        }
        let name = InputFile.uploadName(path: input.path, sha256: file.sha256)
        var uploaded: UploadedFile
        do {
            uploaded = try await slot.api.upload(file.bytes, name: name, subfolder: InputFile.subfolder)
            if let mask, let maskPath = input.mask?.path {
                // The mask's alpha into the image, saved under a name of its own (ComfyUI's mask editor).
                let maskedName = InputFile.uploadName(path: maskPath, sha256: FileHash.sha256(Array(key.utf8)))
                uploaded = try await slot.api.upload(mask.bytes, name: maskedName, subfolder: InputFile.subfolder, original: uploaded)
            }
        } catch {
            uploadFailed(promptID, error, server: server)
            return nil
        }
        guard stillPreparing(promptID) else { return nil }
        let value = uploaded.inputValue
        let recorded = record {
            try queue.recordUpload(server: slot.definition.url, key: key, value: value, size: Int64(file.bytes.count), now: wallClock)
            return true
        }
        // Not recorded (the queue cannot be written): the run pauses; this item goes back.
        guard recorded else {
            putBackUnspent(promptID, reason: "the queue cannot be written")
            return nil
        }
        return value
    }

    private func uploadFailed(_ promptID: String, _ error: ComfyAPIError, server: Int) {
        switch error.kind {
        case .connectionRefused, .hostNotFound, .timedOut, .transport:
            // The server went away: no fault of the item.
            servers[server].probes.yield()
            putBackUnspent(promptID, reason: "\(error)")
        case .httpStatus(413, _):
            end(promptID, .input("\(error)"))
        default:
            end(promptID, .serverError(error))
        }
    }

    /// A file's SHA-256, from the run's cache when the file's size and time are those hashed
    /// (the cache holds at most 10,000 files: a run of weeks over many folders stays bounded).
    private func hash(_ path: String, size: Int64, modified: Double) async throws -> String {
        if let known = inputHashes[path], known.size == size, known.modified == modified { return known.sha256 }
        let sha256 = try await files.sha256(of: path)
        if inputHashes.count >= 10_000 { inputHashes.removeAll(keepingCapacity: true) }
        inputHashes[path] = (size, modified, sha256)
        return sha256
    }

    /// Whether the prompt is still being prepared for its POST (not taken back meanwhile).
    func stillPreparing(_ promptID: String) -> Bool { flights.stage(of: promptID) == .preparing && inFlight[promptID] != nil }

    /// Back to the queue without spending a retry: the server or the queue failed, not the item.
    func putBackUnspent(_ promptID: String, reason: String) {
        guard let flight = removeFlight(promptID) else { return }
        connectionCommands.yield(.forget(promptID, servers[flight.server].connection))
        requeue(flight, reason: reason)
        refill()
        checkFinished()
    }

    /// Why the file is not what `add` recorded (nil: unchanged).
    nonisolated static func changed(_ path: String, size: Int64, modified: Double) -> String? {
        guard let status = LocalFiles.status(path) else { return "\(path): the input file is gone since the job was added" }
        if status.size != size || abs(status.modified - modified) > 0.001 {
            return "\(path): the input file changed since the job was added (size \(size) → \(status.size)); add the job again to use the new file"
        }
        return nil
    }

    /// The server refused the prompt naming one of our uploaded files: it lost its input folder
    /// (a restart with a fresh folder). Its uploads are forgotten and the item goes back to be
    /// uploaded again; returns false when that does not apply (then it fails as rejected).
    func lostInputs(_ promptID: String, _ error: ComfyAPIError) -> Bool {
        guard let flight = inFlight[promptID], !flight.inputs.isEmpty, case .rejected = error.kind else { return false }
        let text = "\(error)"
        guard flight.inputs.contains(where: { text.contains($0.uploadedAs) }) else { return false }
        let count = (inputRetries[flight.itemID] ?? 0) + 1
        inputRetries[flight.itemID] = count
        guard count <= 2 else { return false }
        record {
            try queue.forgetUploads(server: servers[flight.server].definition.url)
            return true
        }
        putBackUnspent(promptID, reason: "\(servers[flight.server].name) no longer has the uploaded input files (restarted with a new input folder?): uploading again")
        return true
    }
}

struct InputReadError: Error, CustomStringConvertible {
    var description: String
}
