import Foundation
import HTTPServer
import QueueStore
import Serve

/// `comfyq serve [--listen ADDR:PORT] [--token T] [--allow-origin ORIGIN]… [--server NAME|URL]… [--db PATH]`
enum ServeCommand {
    static let spec = CommandSpec(
        name: "serve",
        abstract: "Show the queue in a browser: jobs, live progress, sweep grids, every image with its parameters.",
        discussion: """
            Pages are rendered from the queue, so a comfyq run in another process shows live (a
            change reaches an open page within a second). Listens on loopback by default; on any
            other address a token is required, and one is made up and printed when none is given.
            The JSON API (/api/...) is what the pages read; POST /api/jobs adds a job as comfyq add
            does, pre-flighted against --server (else the servers file's). --allow-origin lets a
            page on that origin (ComfyUI's, with comfyq's extension: comfyq comfyui install) call
            the API and the controls from the browser; no other origin can.
            """,
        options: [
            .value("listen", name: "addr:port", help: "Where to listen (default 127.0.0.1:8190)."),
            .value("token", name: "token", help: "Require this token (in the URL once, then a cookie; or Authorization: Bearer)."),
            .value(
                "allow-origin", name: "origin",
                help: "A page at ORIGIN (such as ComfyUI's, http://127.0.0.1:8188) may call the API and\nthe controls from the browser (repeatable); with --token it must send the token too.",
                repeatable: true),
            ServerChecks.serverOption, ServerChecks.noPreflightOption, ServerChecks.headerOption, ServersConfig.option,
            JobFiles.dbOption,
        ],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let path = arguments.value("db") ?? Queue.defaultPath(environment: console.environment, home: console.home)
        _ = try JobFiles.openQueue(arguments, console)  // fails here, clearly, if the queue cannot be opened
        let origins = try arguments.values("allow-origin").map { try origin($0) }
        let (server, url) = try start(
            listen: arguments.value("listen") ?? "127.0.0.1:8190", token: arguments.value("token"), databasePath: path, option: "--listen", command: spec,
            intake: CommandLineIntake(arguments: arguments, console: console), allowedOrigins: origins)
        console.print("comfyq serve: \(url)  (Ctrl-C to stop)")
        await SimulateCommand.waitForInterrupt()
        server.stop()
        return .success
    }

    /// `--allow-origin`: `scheme://host[:port]`, as a browser sends it in `Origin`.
    static func origin(_ text: String) throws -> String {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), ["http", "https"].contains(url.scheme ?? ""), url.host != nil, url.path.isEmpty, url.query == nil else {
            throw UsageError("--allow-origin must be an origin such as http://127.0.0.1:8188 (scheme, host and port; no path), got '\(text)'", command: spec)
        }
        return trimmed
    }

    /// Starts serving the queue at `listen` (`ADDRESS:PORT`); returns the server and the URL to
    /// open (with the token when one is needed: given, or made up off loopback). `intake` adds
    /// the jobs the API is sent; pages on `allowedOrigins` may call the API and the controls.
    static func start(
        listen: String, token given: String?, databasePath: String, option: String, command: CommandSpec, intake: any JobIntake,
        allowedOrigins: [String] = []
    ) throws -> (HTTPServer, String) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw UsageError("\(option) must be ADDRESS:PORT, such as 127.0.0.1:8190 or 0.0.0.0:8190, got '\(listen)'", command: command)
        }
        let host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let loopback = ["127.0.0.1", "localhost", "::1"].contains(host)
        let token = given ?? (loopback ? nil : UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))
        let app = ServeApp(databasePath: databasePath, token: token, intake: intake, allowedOrigins: allowedOrigins)
        let server: HTTPServer
        do {
            server = try HTTPServer(host: host, port: port, name: "comfyq-serve", maximumBody: 32 << 20, idleTimeout: .seconds(60))
        } catch {
            throw CommandFailure("cannot listen on \(listen): \(error)")
        }
        server.start { request, connection, _ in app.handle(request, connection) }
        let shown = host.contains(":") ? "[\(host)]" : host
        return (server, "http://\(shown):\(server.port)/" + (token.map { "?token=\($0)" } ?? ""))
    }
}
