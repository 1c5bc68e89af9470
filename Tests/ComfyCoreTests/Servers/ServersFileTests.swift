import ComfyCore
import Testing

@Suite struct ServersFileTests {
    static let environment = ServersFile.Environment(
        home: "/home/u", path: "/usr/bin:/bin",
        directoryExists: { ["/home/u/ComfyUI", "/srv"].contains($0) },
        locate: { program, path, _ in
            guard path != nil else { return nil }
            return ["python", "/usr/bin/python3", "comfyq"].contains(program) ? "/usr/bin/\(program)" : nil
        })

    static func load(_ text: String) throws(JobValidationError) -> ServersFile {
        try ServersFile.load(text: text, path: "servers.json5", environment: environment)
    }

    static func problems(_ text: String) -> [String] {
        do {
            _ = try load(text)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func theIssuesExampleGivesFourServers() throws {
        let file = try Self.load(
            """
            {
              servers: [
                {name: "gpu0", url: "http://127.0.0.1:8188"},                       // not supervised
                {name: "local", url: "http://127.0.0.1:{port}", port: 8190, instances: 3,   // 8190, 8191, 8192
                 command: "python main.py --listen 127.0.0.1 --port {port} --disable-auto-launch",
                 cwd: "~/ComfyUI", env: {CUDA_VISIBLE_DEVICES: "0", COMFY_NAME: "{name}-{index}"},
                 start_timeout: "120s", concurrency: 2},
              ],
            }
            """)
        #expect(file.servers.map(\.name) == ["gpu0", "local/0", "local/1", "local/2"])
        #expect(file.servers.map(\.url) == ["http://127.0.0.1:8188", "http://127.0.0.1:8190", "http://127.0.0.1:8191", "http://127.0.0.1:8192"])
        #expect(file.servers[0].launch == nil)
        let second = try #require(file.servers[2].launch)
        #expect(second.argv == ["python", "main.py", "--listen", "127.0.0.1", "--port", "8191", "--disable-auto-launch"])
        #expect(second.cwd == "/home/u/ComfyUI")
        #expect(second.environment == ["CUDA_VISIBLE_DEVICES": "0", "COMFY_NAME": "local/1-1"])
        #expect(second.startTimeout == 120)
        #expect(!second.keepRunning)
        #expect(file.servers[2].concurrency == 2)
        #expect(file.servers[0].downAfter == 30 && file.servers[0].maxRestarts == 5)
        #expect(file.servers(matching: "local").count == 3)
        #expect(file.servers(matching: "local/2").map(\.url) == ["http://127.0.0.1:8192"])
        #expect(file.servers(matching: "gpu").isEmpty)
    }

    @Test(arguments: [
        ("{servers: [{name: 'a', url: 'http://h:1', colour: 'red'}]}", "servers.json5: servers[0].colour: unknown field"),
        ("{servers: [{name: 'a', url: 'http://h:1'}, {name: 'a', url: 'http://h:2'}]}", "servers.json5: servers: duplicate name \"a\""),
        ("{servers: [{name: 'a', url: 'http://h:8188', port: 9000, instances: 2, command: 'python'}]}",
         "servers.json5: servers[0].url: must contain {port} when instances is 2"),
        ("{servers: [{name: 'a', url: 'http://h:{port}', port: 9000, command: 'python', start_timeout: 'soon'}]}",
         "servers.json5: servers[0].start_timeout: must be a duration such as \"30s\" or \"2m\", not \"soon\""),
        ("{servers: [{name: 'a', url: 'http://h:1', down_after: 30}]}", "servers.json5: servers[0].down_after: must be a duration"),
        ("{servers: [{name: 'a', url: 'http://h:{port}', port: 9000, command: 'pythn main.py'}]}",
         "servers.json5: servers[0].command: pythn is not on PATH"),
        ("{servers: [{name: 'a', url: 'http://h:{port}', port: 9000, command: '/opt/nothing/python'}]}",
         "servers.json5: servers[0].command: no such program: /opt/nothing/python"),
        ("{servers: [{name: 'a', url: 'http://h:{port}', port: 9000, command: 'python', cwd: '~/Comfy'}]}",
         "servers.json5: servers[0].cwd: no such folder: /home/u/Comfy"),
        ("{servers: [{name: 'a', url: 'http://h:{port}'}]}", "servers.json5: servers[0].port: required: {port} is used"),
        ("{servers: [{url: 'http://h:1'}]}", "servers.json5: servers[0].name: required"),
        ("{servers: [{name: 'a:b', url: 'http://h:1'}]}", "servers.json5: servers[0].name: must be letters, digits"),
        ("{servers: [{name: 'a', url: 'ftp://h:1'}]}", "servers.json5: servers[0].url: must be an http:// or https:// URL"),
        ("{servers: [{name: 'a', url: 'http://h:1', keep_running: true}]}", "servers.json5: servers[0].keep_running: applies only to a server with a command"),
        ("{servers: [{name: 'a', url: 'http://h:{port}', port: 70000}]}", "servers.json5: servers[0].port: must be a whole number from 1 to 65535"),
        ("{servers: [{name: 'a', url: 'http://h:{port}', port: 9000, command: 'python \"main.py'}]}",
         "servers.json5: servers[0].command: has an unclosed quote"),
        ("{servers: [{name: 'a', url: 'http://h:1', concurrency: 0}]}", "servers.json5: servers[0].concurrency: must be a whole number from 1 up"),
        ("{servers: {name: 'a'}}", "servers.json5: servers: required: a list of servers"),
        ("{servers: [\n  {name: 'a',, url: 'http://h:1'}]}", "servers.json5: line 2, column 14:"),
        ("[]", "servers.json5: must be an object such as {servers: [...]}"),
        ("{servers: [{name: 'a', url: 'http://h:1', comfyq_extension: true}]}",
         "servers.json5: servers[0].comfyq_extension: needs command and cwd (ComfyUI's folder)"),
        ("{servers: [{name: 'a', url: 'http://h:{port}', port: 9000, command: 'python', comfyq_extension: true}]}",
         "servers.json5: servers[0].comfyq_extension: needs command and cwd"),
        ("{servers: [{name: 'a', url: 'http://h:{port}', port: 9000, command: 'python', cwd: '~/ComfyUI', comfyq_extension: 'serve'}]}",
         "servers.json5: servers[0].comfyq_extension: must be true, false or comfyq serve's URL"),
    ])
    func badInputGetsOneLineNamingTheField(text: String, expected: String) {
        let problems = Self.problems(text)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.hasPrefix(expected) == true, "\(problems)")
    }

    /// A supervised ComfyUI may get comfyq's extension installed into its folder before it starts.
    @Test(arguments: [
        ("true", "http://127.0.0.1:8190" as String?),
        ("'http://10.0.0.2:8190'", "http://10.0.0.2:8190"),
        ("false", nil),
    ])
    func theExtensionGoesIntoTheSupervisedServersFolder(value: String, serve: String?) throws {
        let file = try Self.load("{servers: [{name: 'a', url: 'http://h:{port}', port: 9000, command: 'python main.py', cwd: '~/ComfyUI', comfyq_extension: \(value)}]}")
        #expect(file.servers.first?.launch?.extensionServe == serve)
        #expect(file.servers.first?.launch?.cwd == "/home/u/ComfyUI")
    }

    @Test func everyProblemIsReportedTogether() {
        let problems = Self.problems("{servers: [{name: 'a', url: 'http://h:1', colour: 1}, {name: 'b', url: 'x'}]}")
        #expect(problems.count == 2)
    }

    @Test(arguments: [
        ("python main.py --port 8188", ["python", "main.py", "--port", "8188"]),
        ("  a   b  ", ["a", "b"]),
        ("a 'b c' \"d \\\"e\\\"\" f\\ g", ["a", "b c", "d \"e\"", "f g"]),
        ("a ''", ["a", ""]),
    ])
    func commandsSplitIntoWordsWithoutAShell(command: String, words: [String]) {
        #expect(ServersFile.words(command) == words)
    }

    @Test(arguments: [("gpu0", true), ("local/1", true), ("local/x", false), ("127.0.0.1:8188", false), ("http://h:1", false)])
    func namesAreToldFromURLs(text: String, isName: Bool) {
        #expect(ServersFile.isName(text) == isName)
    }
}
