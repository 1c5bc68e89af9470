import ComfyCore
import Foundation
import Hooks
import Testing
import TestSupport

/// The `comfyq` table: every function returns `nil, message` on failure and never raises.
@Suite struct HostLibraryTests {
    /// Runs `body` as the body of on_idle and returns what it logged.
    static func run(_ body: String, variables: [String: String] = ProcessInfo.processInfo.environment, time: Double = 5) async throws -> LogCollector {
        let log = LogCollector()
        var settings = HookScript.Settings()
        settings.limits.time = time
        let script = try await HookScript.load(
            path: try scriptFile("function on_idle()\n\(body)\nend"), settings: settings, environment: log.environment(variables: variables))
        script.deliver(.batch(.idle, [:]))
        await script.flush()
        script.stop()
        return log
    }

    @Test(arguments: [
        ("comfyq.log('info', comfyq.json.encode({b = {1, 2}, a = 'x'}))", #"{"a":"x","b":[1,2]}"#),
        ("local t = comfyq.json.decode('{\"n\": 1.5, \"l\": [true, null, 3]}') comfyq.log('info', t.n .. ' ' .. tostring(t.l[1]) .. ' ' .. t.l[3])", "1.5 true 3"),
        ("local v, err = comfyq.json.decode('{oops') comfyq.log('info', tostring(v) .. ' ' .. err)", "nil json.decode: line 1, column 2"),
        ("local v, err = comfyq.json.encode({f = print}) comfyq.log('info', tostring(v) .. ' ' .. err)", "nil comfyq.json.encode: a function cannot be converted"),
        ("comfyq.log('info', comfyq.env('COMFYQ_TEST_VALUE') .. ' ' .. tostring(comfyq.env('COMFYQ_UNSET')))", "hello nil"),
        ("comfyq.log('info', comfyq.api_version)", "1"),
        ("local ok, err = comfyq.log('loud', 'x') comfyq.log('info', tostring(ok) .. ' ' .. err)", "nil log: level must be one of debug, info, warn, error"),
        ("local code, out = comfyq.exec({'sh', '-c', 'echo out; echo err >&2; exit 3'}) comfyq.log('info', code .. ' ' .. out:gsub('\\n', '|'))", "3 out|err|"),
        ("local v, err = comfyq.exec({'no-such-program-xyz'}) comfyq.log('info', tostring(v) .. ' ' .. err)", "nil exec: no-such-program-xyz is not on PATH"),
        ("local v, err = comfyq.exec({'sleep', '5'}, 0.2) comfyq.log('info', tostring(v) .. ' ' .. err)", "nil exec: sleep timed out after 0.2 s"),
        ("local v, err = comfyq.exec('ls') comfyq.log('info', tostring(v) .. ' ' .. err)", "nil exec: expects a list {program, arg, …}"),
        ("local v, err = comfyq.http_get('ftp://x') comfyq.log('info', tostring(v) .. ' ' .. err)", "nil http_get: expects an http:// or https:// URL"),
        ("local v, err = comfyq.http_post('http://127.0.0.1:1/', 'x', nil, 2) comfyq.log('info', tostring(v) .. ' ' .. err:sub(1, 34))", "nil http_post: http://127.0.0.1:1/: "),
        ("local v, err = comfyq.http_post('http://127.0.0.1:1/', {}) comfyq.log('info', tostring(v) .. ' ' .. err)", "nil http_post: the body is an empty table: give a string, {file = PATH} or {fields = …, files = …}"),
    ])
    func functions(body: String, expected: String) async throws {
        var variables = ProcessInfo.processInfo.environment
        variables["COMFYQ_TEST_VALUE"] = "hello"
        let log = try await Self.run(body, variables: variables)
        #expect(log.all.map(\.level) == [.info], "\(log.messages)")
        #expect(log.messages.first?.hasPrefix(expected) == true, "\(log.messages)")
    }

    @Test func waitsAreClampedToTheCallsTimeLimit() async throws {
        var log: LogCollector?
        let elapsed = try await seconds {
            log = try await Self.run("local v, err = comfyq.exec({'sleep', '10'}, 60)\ncomfyq.log('info', tostring(v) .. ' ' .. err)", time: 0.5)
        }
        #expect(elapsed < 8)  // well under the 10 s asked for; the message shows the clamp itself
        #expect(log?.messages == ["nil exec: sleep timed out after 0.5 s"])
    }

    @Test func httpGetAndPostReachTheServer() async throws {
        let listener = try await HTTPListener.start()
        defer { listener.stop() }
        let log = try await Self.run(
            """
            local status, body = comfyq.http_get('\(listener.url)/ping', {Accept = 'application/json'})
            comfyq.log('info', status .. ' ' .. body)
            status, body = comfyq.http_post('\(listener.url)/hook', '{"a":1}', {['Content-Type'] = 'application/json', ['X-Token'] = 't'})
            comfyq.log('info', status .. ' [' .. body .. ']')
            """)
        #expect(log.messages == [#"200 {"hello":"hook"}"#, "204 []"])
        let requests = try await listener.requests()
        #expect(requests.count == 2)
        #expect(requests.last?["body"] as? String == #"{"a":1}"#)
        #expect((requests.last?["headers"] as? [String: String])?["X-Token"] == "t")
        #expect(log.calls.count == 2 && log.calls[1].hasPrefix("comfyq.http_post(\"\(listener.url)/hook\""))
    }

    @Test func notifyUsesNotifySendOrFallsBackToTheLog() async throws {
        let folder = TestFolder.root.appendingPathComponent("comfyq-notify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let record = folder.appendingPathComponent("calls").path
        let fake = folder.appendingPathComponent("notify-send").path
        try "#!/bin/sh\nprintf '%s|' \"$@\" >> '\(record)'\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        var variables = ProcessInfo.processInfo.environment
        variables["PATH"] = folder.path + ":/usr/bin:/bin"
        let shown = try await Self.run("comfyq.log('info', tostring(comfyq.notify('Title', 'Body')))", variables: variables)
        #expect(shown.messages == ["true"])
        #expect(try String(contentsOfFile: record, encoding: .utf8) == "--app-name=comfyq|Title|Body|")

        variables["PATH"] = "/nonexistent"
        let logged = try await Self.run("comfyq.log('info', tostring(comfyq.notify('Title', 'Body')))", variables: variables)
        #expect(logged.messages == ["Title: Body", "false"])
    }

    @Test func optionsReachTheScript() async throws {
        let log = LogCollector()
        let script = try await loadScript(
            "function on_idle() comfyq.log('info', comfyq.options.url .. ' ' .. comfyq.options.retries) end", options: ["url": "http://x", "retries": 3],
            log: log)
        script.deliver(.batch(.idle, [:]))
        await script.flush()
        #expect(log.messages == ["http://x 3"])
        script.stop()
    }
}

@Suite struct LuaJobFileTests {
    @Test func aLuaJobReturnsTheJobTable() throws {
        let path = try scriptFile(
            """
            local prompts = {}
            for line in io.lines(JOB_DIR .. '/prompts.txt') do prompts[#prompts + 1] = line end
            return { name = 'generated', workflow = 'w.json', matrix = { ['KSampler.cfg'] = { 5, 7.5 } }, zip = { ['6.text'] = prompts } }
            """, name: "night.lua")
        let folder = (path as NSString).deletingLastPathComponent
        try "cat\ndog\n".write(toFile: folder + "/prompts.txt", atomically: true, encoding: .utf8)
        let job = try LuaJobFile.evaluate(path: path)
        #expect(job["name"] == "generated")
        #expect(job["zip"]?["6.text"] == ["cat", "dog"])
        #expect(job["matrix"]?["KSampler.cfg"]?.serialized() == "[5,7.5]")
    }

    @Test func comfyqFilesListsAFolderRelativeToTheJob() throws {
        let path = try scriptFile(
            """
            local photos = comfyq.files('photos/*.png')
            local none = comfyq.files('photos/*.jpg')
            return { workflow = 'w.json', zip = { ['Load Image.image'] = { files = photos } }, count = #none }
            """, name: "folder.lua")
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder + "/photos/sub", withIntermediateDirectories: true)
        for name in ["b.png", "a.png", "notes.txt", "sub/c.png"] { try Data().write(to: URL(fileURLWithPath: folder + "/photos/" + name)) }
        let job = try LuaJobFile.evaluate(path: path)
        #expect(job["zip"]?["Load Image.image"]?["files"] == ["photos/a.png", "photos/b.png"])
        #expect(job["count"] == 0)
    }

    @Test(arguments: [
        ("return {\n  name = 'x',\n  seeds = {start = 1, count = nil + 1},\n}", "line 3", "attempt to perform arithmetic on a nil value"),
        ("local x = {", "line 1", "expected"),
        ("local x = 1", "", "returns nothing: end the file with 'return { workflow = …, … }'"),
        ("return {f = print}", "", "the returned value cannot be used: a function cannot be converted"),
    ])
    func errorsNameTheLine(source: String, location: String, reason: String) throws {
        let path = try scriptFile(source, name: "job.lua")
        #expect {
            try LuaJobFile.evaluate(path: path)
        } throws: { error in
            guard let failure = error as? LuaJobFile.Failure else { return false }
            return failure.location == location && failure.reason.contains(reason)
        }
    }
}
