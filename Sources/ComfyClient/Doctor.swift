import ComfyCore
import Foundation
import WebSocket

/// One finding of `comfyq doctor`.
public struct DoctorCheck: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        case passed, failed, skipped
    }

    public var name: String
    public var status: Status
    public var detail: String
    /// What to try, for failures.
    public var hint: String?
}

/// Everything `comfyq doctor` found about one server.
public struct DoctorReport: Sendable, Equatable {
    public var server: String
    public var checks: [DoctorCheck]

    public var passed: Bool { checks.allSatisfy { $0.status == .passed } }
}

/// Checks a server the way a user would when something is off: reachable, ComfyUI at all, its
/// version and devices, its queue, the WebSocket handshake, the first `status` message, latency.
public enum Doctor {
    public static let checkNames = ["http", "comfyui", "version", "devices", "queue", "websocket", "status", "latency"]

    public static func examine(
        _ api: ComfyAPI, webSocket options: WebSocketOptions = WebSocketOptions(), clientID: String = UUID().uuidString.lowercased()
    ) async -> DoctorReport {
        var checks: [DoctorCheck] = []
        func add(_ name: String, _ status: DoctorCheck.Status, _ detail: String, hint: String? = nil) {
            checks.append(DoctorCheck(name: name, status: status, detail: detail, hint: hint))
        }
        func skipRest() -> DoctorReport {
            for name in checkNames.dropFirst(checks.count) { add(name, .skipped, "not checked") }
            return DoctorReport(server: api.name, checks: checks)
        }

        // HTTP, and whether it is ComfyUI at all.
        let started = ContinuousClock.now
        let stats: SystemStats
        do {
            stats = try await api.systemStats()
            add("http", .passed, "reachable (GET /system_stats in \(milliseconds(ContinuousClock.now - started)) ms)")
        } catch {
            if case .notComfyUI(let detail) = error.kind {
                add("http", .passed, "reachable")
                add("comfyui", .failed, detail, hint: "is this the ComfyUI port (8188 by default), or a proxy's page?")
            } else {
                add("http", .failed, "\(error)", hint: hint(for: error.kind))
            }
            return skipRest()
        }
        guard let version = stats.comfyUIVersion else {
            add("comfyui", .failed, "GET /system_stats has no comfyui_version", hint: "is this the ComfyUI port?")
            return skipRest()
        }
        add("comfyui", .passed, "ComfyUI answers")
        var versions = "ComfyUI \(version)"
        if let python = stats.pythonVersion { versions += ", Python \(python.split(separator: " ").first ?? "")" }
        if let torch = stats.pytorchVersion { versions += ", PyTorch \(torch)" }
        add("version", .passed, versions)
        if stats.devices.isEmpty {
            add("devices", .failed, "no devices listed", hint: "ComfyUI found no GPU or CPU device; check its log")
        } else {
            let list = stats.devices.map { device in
                device.vramTotal > 0
                    ? "\(device.name): \(gibibytes(device.vramFree)) free of \(gibibytes(device.vramTotal))"
                    : device.name
            }
            add("devices", .passed, list.joined(separator: "; "))
        }

        // The queue, and the API comfyq will use for status and cancel.
        do {
            let remaining = try await api.queueRemaining()
            let jobs = try await api.hasJobsAPI()
            let api = ServerFeatures(version: version, jobs: jobs).apiDescription
            add("queue", .passed, (remaining == 1 ? "1 prompt queued or running" : "\(remaining) prompts queued or running") + "; comfyq uses its \(api)")
        } catch {
            add("queue", .failed, "\(error)", hint: hint(for: error.kind))
        }

        // The WebSocket: handshake, then the first message must be `status` carrying our clientId.
        do {
            let url = try api.webSocketURL(clientID: clientID)
            let socket = try await WebSocketClient.connect(to: url, options: options)
            add("websocket", .passed, "handshake OK (\(url))")
            let first = await firstMessage(socket, timeout: .seconds(5))
            socket.close()
            switch first {
            case .text(let text)?:
                if case .status(_, let sid)? = try? ServerEventDecoder.decode(text), let sid {
                    if sid == clientID {
                        add("status", .passed, "first message is status, sid \(sid)")
                    } else {
                        add("status", .failed, "status carries sid \(sid), not our clientId \(clientID)", hint: "a proxy may be rewriting the query string")
                    }
                } else {
                    add("status", .failed, "the first message is not a status message: \(text.prefix(80))")
                }
            case .binary?:
                add("status", .failed, "the first message is binary, not status")
            case nil:
                add("status", .failed, "no message within 5 s of connecting", hint: "ComfyUI sends status at once; a proxy may be buffering")
            }
        } catch let error as WebSocketError {
            let hint: String
            switch error {
            case .handshake(.badAccept): hint = "something between us and ComfyUI answered the upgrade wrongly (a proxy?)"
            case .handshake(.unexpectedStatus): hint = "does the proxy forward WebSocket upgrades for /ws?"
            case .socket(.connectionRefused): hint = "is ComfyUI running, and listening on this address? (--listen)"
            default: hint = "check that /ws is reachable"
            }
            add("websocket", .failed, "\(error)", hint: hint)
            add("status", .skipped, "not checked")
        } catch {
            add("websocket", .failed, "\(error)")
            add("status", .skipped, "not checked")
        }

        // Round trip: the median of five small requests.
        var samples: [Duration] = []
        for _ in 0..<5 {
            let start = ContinuousClock.now
            guard (try? await api.queueRemaining()) != nil else { break }
            samples.append(ContinuousClock.now - start)
        }
        if samples.count == 5 {
            add("latency", .passed, "\(milliseconds(samples.sorted()[2])) ms per request (median of 5)")
        } else {
            add("latency", .failed, "requests failed while measuring")
        }
        return DoctorReport(server: api.name, checks: checks)
    }

    /// What a user should try for a transport failure.
    public static func hint(for kind: ComfyAPIError.Kind) -> String? {
        switch kind {
        case .connectionRefused: "is ComfyUI running, and listening on this address? (--listen)"
        case .hostNotFound: "check the host name in --server"
        case .timedOut: "is the server up, and is a firewall dropping the connection?"
        case .notComfyUI: "is this the ComfyUI port (8188 by default)?"
        case .httpStatus(let status, _) where status >= 500: "ComfyUI reported an internal error; check its log"
        case .transport(let detail) where detail.contains("SSL") || detail.contains("certificate"):
            "the server's certificate is not trusted: for HTTPS, install its CA in the system store "
                + "(update-ca-certificates); --ca-file and --insecure reach wss:// only, since Foundation's "
                + "URLSession on Linux takes no per-request trust settings"
        default: nil
        }
    }

    private static func firstMessage(_ socket: WebSocketClient, timeout: Duration) async -> WebSocketMessage? {
        await withTaskGroup(of: WebSocketMessage?.self) { group in
            group.addTask {
                var iterator = socket.messages.makeAsyncIterator()
                return try? await iterator.next()
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            socket.abort()
            group.cancelAll()
            return first
        }
    }

    static func milliseconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return value < 10 ? String(format: "%.1f", value) : String(format: "%.0f", value)
    }

    static func gibibytes(_ bytes: Int64) -> String { String(format: "%.1f GiB", Double(bytes) / 1_073_741_824) }
}
