// swift-tools-version:6.0
//
// comfyq: durable, phase-aware batch runner for ComfyUI.
//
// No package dependencies: only the toolchain plus system C libraries
// (Lua 5.4, SQLite 3, OpenSSL 3 for wss://, zlib for PNG, libpq for a PostgreSQL queue),
// reached through system-library targets.

import PackageDescription

let package = Package(
    name: "comfyq",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "comfyq", targets: ["comfyq"]),
        .executable(name: "comfyq-bench", targets: ["comfyq-bench"]),
    ],
    targets: [
        // System C libraries.
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"]), .brew(["lua"])]
        ),
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),

        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),

        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),

        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),

        // Pure core: graph model, server events, wire decoding, the progress engine.
        .target(name: "ComfyCore", linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]),
        // RFC 6455: the pure codec (frames, messages, handshake, SHA-1) and the socket shell.
        .target(name: "WebSocket", dependencies: ["COpenSSL"]),
        // The ComfyUI API over HTTP (URLSession) and the WebSocket.
        .target(name: "ComfyClient", dependencies: ["ComfyCore", "WebSocket", "CCurlFix"]),
        // Releases the URL handles swift-corelibs-foundation leaks on every request (see curlfix.c).
        // Its functions must be in the executable's dynamic symbol table to come before libcurl's.
        .target(
            name: "CCurlFix",
            linkerSettings: [
                .linkedLibrary("dl", .when(platforms: [.linux])),
                .unsafeFlags(
                    ["curl_url", "curl_url_dup", "curl_url_cleanup", "curl_free"].flatMap { ["-Xlinker", "--export-dynamic-symbol=\($0)"] },
                    .when(platforms: [.linux])),
            ]),
        // The fake ComfyUI server: HTTP/1.1 + WebSocket server role, prompts, outputs, faults.
        // One HTTP/1.1 server for the simulator and `comfyq serve`: listener, connections, messages.
        .target(name: "HTTPServer", dependencies: ["WebSocket"]),
        .target(name: "Simulator", dependencies: ["ComfyCore", "WebSocket", "InputFiles", "HTTPServer"]),
        // Input files on this machine: the file system for job loading, SHA-256, PNG masks.
        .target(name: "InputFiles", dependencies: ["ComfyCore", "COpenSSL", "CZlib"]),
        // Storage: the queue on SQLite or PostgreSQL, with migrations.
        .target(name: "QueueStore", dependencies: ["CSQLite", "CLibPQ", "ComfyCore"]),
        // Starting and stopping programs (posix_spawn, process groups): hooks' exec, servers.
        .target(name: "CProcessShim"),
        .target(name: "Processes", dependencies: ["CProcessShim"]),
        // The Lua host.
        .target(name: "Hooks", dependencies: ["CLuaShim", "ComfyCore", "Processes", "InputFiles"]),
        // Scheduling, reconciliation, outputs: the queue run against ComfyUI servers.
        .target(name: "Runner", dependencies: ["ComfyCore", "ComfyClient", "QueueStore", "WebSocket", "Hooks", "Processes", "InputFiles", "ComfyUIExtension"]),
        // `comfyq serve`: routes, the JSON API, the event stream and auth; the browser code (HTML,
        // CSS, JavaScript) is in Web/, built into the binary.
        .target(name: "Serve", dependencies: ["ComfyCore", "QueueStore", "InputFiles", "HTTPServer"], resources: [.embedInCode("Web")]),
        // The ComfyUI extension (a custom-node folder in Files/, built into the binary) and its installer.
        .target(name: "ComfyUIExtension", dependencies: ["ComfyCore"], resources: [.embedInCode("Files")]),
        // The command router and commands (the shell around the libraries).
        .target(name: "ComfyCLI", dependencies: ["ComfyCore", "ComfyClient", "Runner", "Simulator", "WebSocket", "QueueStore", "Hooks", "InputFiles", "HTTPServer", "Serve", "ComfyUIExtension"]),
        // Entry point only.
        .executableTarget(name: "comfyq", dependencies: ["ComfyCLI"]),
        // Benchmarks (run in release).
        .executableTarget(
            name: "comfyq-bench", dependencies: ["ComfyCore", "ComfyClient", "Simulator", "WebSocket", "QueueStore", "Runner", "Hooks", "Workloads", "InputFiles", "ComfyCLI", "HTTPServer", "Serve"]),
        // Graphs shared by the tests and the benchmarks.
        .target(name: "Workloads", dependencies: ["ComfyCore"]),

        .testTarget(name: "ComfyCoreTests", dependencies: ["ComfyCore", "Workloads", "InputFiles"]),
        .target(name: "TestSupport", path: "Tests/TestSupport", exclude: ["http_listener.py", "lifeline.py"]),
        .testTarget(name: "WebSocketTests", dependencies: ["WebSocket", "TestSupport"], exclude: ["Support/ws_server.py"]),
        .testTarget(name: "ComfyClientTests", dependencies: ["ComfyClient", "TestSupport"], exclude: ["Support/fake_comfyui.py"]),
        .testTarget(name: "SimulatorTests", dependencies: ["Simulator", "ComfyClient", "ComfyCore", "TestSupport", "Workloads", "WebSocket", "InputFiles"]),
        .testTarget(name: "QueueStoreTests", dependencies: ["QueueStore", "ComfyCore", "TestSupport"]),
        .testTarget(name: "RunnerTests", dependencies: ["Runner", "Simulator", "QueueStore", "ComfyCore", "ComfyClient", "Hooks", "Processes", "TestSupport", "InputFiles"]),
        .testTarget(name: "ProcessesTests", dependencies: ["Processes", "TestSupport"]),
        .testTarget(name: "HooksTests", dependencies: ["Hooks", "ComfyCore", "TestSupport"]),
        .testTarget(
            name: "ComfyCLITests", dependencies: ["ComfyCLI", "ComfyCore", "QueueStore", "TestSupport", "InputFiles", "Simulator", "WebSocket", "Hooks"],
            exclude: ["Support/comfy_save.py"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer"]),
        .testTarget(name: "ServeTests", dependencies: ["Serve", "ComfyCore", "QueueStore"]),
        .testTarget(name: "InputFilesTests", dependencies: ["InputFiles", "ComfyCore", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
