import ComfyClient
import ComfyCore
import Foundation
import WebSocket

/// `comfyq doctor [--server URL…] [--json]`
enum DoctorCommand {
    static let spec = CommandSpec(
        name: "doctor",
        abstract: "Check that ComfyUI servers are reachable and speak the protocol comfyq needs.",
        discussion: """
            For each server: HTTP reachable, a ComfyUI at all, its version, devices and free VRAM,
            queue length, the WebSocket handshake, the first status message and its sid, and the
            round-trip latency. Exits 0 only when every check on every server passes.
            """,
        options: [
            .value(
                "server", name: "name|url", completion: .servers,
                help: "A server: a name from the servers file, or a URL (default: every server in the\nservers file, else $COMFYQ_SERVER, else http://127.0.0.1:8188).", repeatable: true),
            ServersConfig.option,
            ServerChecks.headerOption,
            .value("ca-file", name: "path", help: "Trust the PEM certificates in this file for wss:// (a private CA)."),
            .flag("insecure", help: "Do not verify wss:// certificates (self-signed test setups only)."),
            .flag("json", help: "Print one JSON document (schema 1) instead of text."),
        ],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let headers = try ServerChecks.headers(arguments, command: spec)
        // --server names or URLs, else every server of the servers file, else ComfyUI's default.
        let loaded = try ServersConfig.load(arguments, console)
        let servers: [ServerDefinition]
        if !arguments.values("server").isEmpty {
            servers = try ServersConfig.resolve(arguments.values("server"), in: loaded, what: "--server", command: spec)
        } else if let loaded, !loaded.file.servers.isEmpty {
            servers = loaded.file.servers
        } else {
            servers = try ServersConfig.resolve([console.defaultServer], in: nil, what: "--server")
        }
        var reports: [DoctorReport] = []
        // What ran, first: a bug report carries the version and the C libraries in use.
        if !arguments.flag("json") { console.writeOut(BuildInfo.lines.joined(separator: "\n") + "\n\n") }
        for server in servers {
            guard let url = URL(string: server.url) else { throw UsageError("--server: not a URL: \(server.url)", command: spec) }
            var options = WebSocketOptions()
            options.headers = headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            options.connectTimeout = .seconds(5)
            options.tls = TLSOptions(verifyPeer: !arguments.flag("insecure"), caFile: arguments.value("ca-file"))
            let api = ComfyAPI(baseURL: url, headers: headers, timeout: 10)
            let report = await Doctor.examine(api, webSocket: options)
            reports.append(report)
            if !arguments.flag("json") { console.writeOut(text(report, color: console.usesColor)) }
        }
        if arguments.flag("json") {
            var document = json(reports).objectValue ?? JSONObject()
            var comfyq: JSONObject = ["version": .string(ComfyQ.version)]
            comfyq["commit"] = BuildInfo.commit.map { .string($0) } ?? .null
            comfyq["built"] = BuildInfo.date.map { .string($0) } ?? .null
            comfyq["libraries"] = .object(BuildInfo.libraries.reduce(into: JSONObject()) { $0[$1.name] = .string($1.version) })
            document["comfyq"] = .object(comfyq)
            console.print(JSONValue.object(document).serialized(pretty: true))
        }
        return reports.allSatisfy(\.passed) ? .success : .failure
    }

    static func text(_ report: DoctorReport, color: Bool) -> String {
        var out = "\(report.server)\n"
        for check in report.checks {
            let mark: String
            switch check.status {
            case .passed: mark = color ? "\u{1B}[32m✓\u{1B}[0m" : "✓"
            case .failed: mark = color ? "\u{1B}[31m✗\u{1B}[0m" : "✗"
            case .skipped: mark = "-"
            }
            out += "  \(mark) \(check.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(check.detail)\n"
            if let hint = check.hint, check.status == .failed { out += "    hint: \(hint)\n" }
        }
        return out
    }

    static func json(_ reports: [DoctorReport]) -> JSONValue {
        let servers: [JSONValue] = reports.map { report in
            let checks: [JSONValue] = report.checks.map { check in
                var object: JSONObject = [
                    "name": .string(check.name), "status": .string(check.status.rawValue), "detail": .string(check.detail),
                ]
                object["hint"] = check.hint.map { .string($0) } ?? .null
                return .object(object)
            }
            return ["server": .string(report.server), "ok": .bool(report.passed), "checks": .array(checks)]
        }
        return ["schema": 1, "ok": .bool(reports.allSatisfy(\.passed)), "servers": .array(servers)]
    }
}
