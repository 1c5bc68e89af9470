import ComfyClient
import ComfyCore
import Foundation
import Simulator
import Synchronization
import TestSupport
import WebSocket
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A simulator on a free port with its own output folder, for one test.
final class SimulatorFixture: Sendable {
    let simulator: Simulator
    let api: ComfyAPI
    let output: String

    /// `profile`: these tests were written against ComfyUI 0.3.64's recordings, whose prompt ids
    /// ("p1") 0.38 refuses; the 0.38 tests say so.
    init(profile: ComfyUIProfile = .v0_3_64, configure: (inout SimulatorOptions) -> Void = { $0.instant() }) throws {
        output = TestFolder.root.appendingPathComponent("comfyq-sim-\(UUID())").path
        var options = SimulatorOptions(outputDirectory: output)
        options.port = 0
        options.profile = profile
        configure(&options)
        simulator = try Simulator(options: options)
        api = ComfyAPI(
            baseURL: URL(string: simulator.url)!, session: URLSession(configuration: .ephemeral), timeout: 10)
    }

    deinit {
        simulator.stop()
        try? FileManager.default.removeItem(atPath: output)
    }

    func post(_ path: String, _ body: JSONValue = [:]) async throws -> JSONValue {
        var request = URLRequest(url: URL(string: simulator.url + path)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.serialized().utf8)
        let (data, _) = try await URLSession(configuration: .ephemeral).data(for: request)
        return (try? JSONValue(parsing: Array(data))) ?? .null
    }

    /// A WebSocket client with `clientID`, collecting what it receives.
    func listen(clientID: String) async throws -> Listener {
        let socket = try await WebSocketClient.connect(to: try api.webSocketURL(clientID: clientID))
        return Listener(socket: socket)
    }
}

/// Collects a connection's messages: JSON text as values, binary frames as `{"binary": event}`.
final class Listener: Sendable {
    let socket: WebSocketClient
    private let ended = Mutex<String?>(nil)
    init(socket: WebSocketClient) { self.socket = socket }

    /// How the stream ended, once it has: a failure message says why messages stopped.
    var ending: String { ended.withLock { $0 } ?? "the stream has not ended" }

    /// The next message, or nil once the stream has ended (recording how).
    private func receive(_ iterator: inout AsyncThrowingStream<WebSocketMessage, any Error>.Iterator) async -> WebSocketMessage? {
        do {
            if let message = try await iterator.next() { return message }
            ended.withLock { $0 = "the stream ended (close code \(socket.closeCode.map(String.init) ?? "none"))" }
        } catch {
            ended.withLock { $0 = "the stream failed: \(error)" }
        }
        return nil
    }

    /// Messages until (and including) `executing` with node null for `promptID`, or a timeout.
    /// On a timeout, what arrived so far (so a failure shows what was seen).
    func until(end promptID: String, timeout: Double = 20, onMessage: @escaping @Sendable (JSONValue) async -> Void = { _ in }) async -> [JSONValue] {
        let collected = Mutex<[JSONValue]>([])
        _ = await within(timeout) {
            var iterator = self.socket.messages.makeAsyncIterator()
            while let message = await self.receive(&iterator) {
                let value: JSONValue
                switch message {
                case .text(let text): value = (try? JSONValue(parsing: text)) ?? .null
                case .binary(let bytes): value = ["binary": .int(bytes.count >= 4 ? Int(bytes[3]) : -1)]
                }
                collected.withLock { $0.append(value) }
                await onMessage(value)
                if value["type"] == "executing", value["data"]?["node"] == .null, value["data"]?["prompt_id"]?.stringValue == promptID {
                    return true
                }
            }
            return true
        }
        return collected.withLock { $0 }
    }

    /// The next `count` text messages as JSON (fewer on timeout or when the socket ends).
    func next(_ count: Int, timeout: Double = 20) async -> [JSONValue] {
        let collected = Mutex<[JSONValue]>([])
        _ = await within(timeout) {
            var iterator = self.socket.messages.makeAsyncIterator()
            while collected.withLock({ $0.count }) < count, let message = await self.receive(&iterator) {
                guard case .text(let text) = message, let value = try? JSONValue(parsing: text) else { continue }
                collected.withLock { $0.append(value) }
            }
            return true
        }
        return collected.withLock { $0 }
    }

    /// The first JSON message that satisfies `condition` (nil on timeout or when the socket ends).
    func first(timeout: Double = 20, where condition: @escaping @Sendable (JSONValue) -> Bool) async -> JSONValue? {
        await within(timeout) {
            var iterator = self.socket.messages.makeAsyncIterator()
            while let message = await self.receive(&iterator) {
                guard case .text(let text) = message, let value = try? JSONValue(parsing: text) else { continue }
                if condition(value) { return value }
            }
            return nil
        }
    }

    func close() { socket.close() }
}

enum Traces {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/traces")

    static func lines(_ name: String) throws -> [JSONValue] {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8).split(separator: "\n")
            .map { try JSONValue(parsing: String($0)) }
    }

    /// The graphs submitted with 200 answers, in order.
    static func submittedGraphs(_ name: String) throws -> [JSONValue] {
        try lines(name).compactMap { line in
            guard let http = line["http"], http["method"] == "POST", http["path"]?.stringValue?.hasSuffix("/prompt") == true else { return nil }
            return http["request"]?["prompt"]
        }
    }
}

/// A message reduced to what fidelity compares: its type and shape, not ids, times or timing.
func shape(_ message: JSONValue) -> String {
    if let event = message["binary"]?.numberValue?.int { return "binary:\(event)" }
    let type = message["type"]?.stringValue ?? "?"
    let data = message["data"] ?? .null
    var text = type + "{" + (data.objectValue?.keys.sorted().joined(separator: ",") ?? "") + "}"
    switch type {
    case "progress": text += " \(data["value"]?.numberValue?.int ?? -1)/\(data["max"]?.numberValue?.int ?? -1)"
    case "progress_state":
        let states = (data["nodes"]?.objectValue?.values ?? []).map { entry in
            "\(entry["state"]?.stringValue ?? "?"):\(entry["value"]?.numberValue.map { Int($0.double) } ?? -1)/\(entry["max"]?.numberValue.map { Int($0.double) } ?? -1)"
        }
        text += " [" + states.joined(separator: " ") + "]"
    case "executing": text += data["node"] == .null ? " end" : (data["prompt_id"] == nil ? " replay" : " node")
    case "execution_cached": text += " \(data["nodes"]?.arrayValue?.count ?? -1) nodes"
    case "executed": text += " \(data["output"]?["images"]?.arrayValue?.count ?? -1) images"
    case "status": text += data["sid"] == nil ? "" : " sid"
    default: break
    }
    return text
}
