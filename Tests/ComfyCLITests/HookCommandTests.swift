import ComfyCore
import Foundation
import InputFiles
import TestSupport
import Testing

/// Hooks through the real binary: `comfyq hook test`, hooks in `comfyq run`, Lua job files, and
/// every example script in scripts/.
@Suite struct HookCommandTests {
    static func script(_ name: String) -> String { Paths.packageRoot.appendingPathComponent("scripts/\(name)").path }
    static func job(_ name: String) -> String { Paths.packageRoot.appendingPathComponent("jobs/\(name)").path }
    static let workflow = Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.json").path

    @Test func discordWebhookPostsFailuresAndTheSummary() async throws {
        let listener = try await HTTPListener.start()
        defer { listener.stop() }
        let folder = try CLIHome("comfyq-hooks-cli")
        let run = try await runBinary(
            ["hook", "test", Self.script("discord-webhook.lua"), "--hook-opt", "url=\(listener.url)/api/webhooks/1/abc"], environment: folder.environment)
        #expect(run.status == .success, "\(run.stdout)\(run.stderr)")
        let posts = try await listener.requests()
        #expect(posts.count == 6)  // the failure, the summary, down, given up, pause, resume
        #expect(posts.allSatisfy { $0["path"] as? String == "/api/webhooks/1/abc" })
        // The summary comes as a form: the message in payload_json, the sample job's contact sheet as files[0].
        let summaryParts = try #require(posts[1]["parts"] as? [[String: Any]], "\(posts[1])")
        #expect(summaryParts.count == 2)
        #expect(summaryParts[1]["name"] as? String == "files[0]" && summaryParts[1]["filename"] as? String == "contact-sheet.png")
        #expect(summaryParts[1]["type"] as? String == "image/png" && (summaryParts[1]["size"] as? Int ?? 0) > 1000)
        let bodies = try posts.enumerated().map { index, post in
            try JSONValue(parsing: index == 1 ? summaryParts[0]["text"] as? String ?? "" : post["body"] as? String ?? "")
        }
        #expect(bodies[0]["content"]?.stringValue?.hasPrefix(":x: **sample/1** failed on http://127.0.0.1:8188: node 8 (VAEDecode)") == true)
        #expect(bodies[1]["content"]?.stringValue?.hasPrefix("**Batch finished** in 19 s: 1 done, 1 failed, 2 retried, 0 skipped\n• sample/1: node 8") == true)
        #expect(bodies[1]["username"] == "comfyq")
        #expect(bodies[2]["content"] == ":rotating_light: **local/0** is down: its process was killed by signal 9")
        #expect(bodies[3]["content"]?.stringValue?.hasPrefix(":skull: comfyq gave up on **local/0**: restarted 5 times within an hour") == true)
        #expect(bodies[3]["content"]?.stringValue?.contains("```\nTraceback (most recent call last):") == true)
        #expect(bodies[4]["content"]?.stringValue?.hasPrefix(":floppy_disk: **Paused**: outputs/sample/sample_7.png: no space left") == true)
        #expect(bodies[5]["content"] == ":arrow_forward: Resumed after 1 min 35 s")
        #expect((posts[0]["headers"] as? [String: String])?["Content-Type"] == "application/json")
    }

    @Test func discordWebhookWithoutAURLIsALoadError() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let run = try await runBinary(["hook", "test", Self.script("discord-webhook.lua")], environment: folder.environment)
        #expect(run.status == .failure)
        #expect(run.stderr == "Error: \(Self.script("discord-webhook.lua")): no webhook URL: give --hook-opt discord-webhook.url=… or set $DISCORD_WEBHOOK_URL\n")
    }

    @Test func ntfyPublishesToTheTopic() async throws {
        let listener = try await HTTPListener.start(status: 200)
        defer { listener.stop() }
        let folder = try CLIHome("comfyq-hooks-cli")
        let run = try await runBinary(
            ["hook", "test", Self.script("ntfy.lua"), "--hook-opt", "topic=night-renders", "--hook-opt", "server=\(listener.url)/"],
            environment: folder.environment.merging(["NTFY_TOKEN": "tk"]) { $1 })
        #expect(run.status == .success, "\(run.stdout)\(run.stderr)")
        let posts = try await listener.requests()
        #expect(posts.count == 5)  // the failure, the summary, down, given up, the pause
        #expect(posts.allSatisfy { $0["path"] as? String == "/night-renders" })
        let headers = posts.map { $0["headers"] as? [String: String] ?? [:] }
        #expect(headers[0]["Title"] == "sample/1 failed" && headers[0]["Priority"] == "high" && headers[0]["Authorization"] == "Bearer tk")
        // The summary carries the sample job's contact sheet: the picture is the body, the text a header.
        #expect(headers[1]["Title"] == "comfyq: sample finished" && headers[1]["Tags"] == "warning")
        #expect(headers[1]["Message"] == "1 done, 1 failed in 19 s" && headers[1]["Filename"] == "contact-sheet.png")
        #expect(headers[1]["Content-Type"] == "image/png" && (posts[1]["size"] as? Int ?? 0) > 1000)
        #expect((posts[1]["body"] as? String)?.hasPrefix("\u{FFFD}PNG") == true)
        #expect(headers[2]["Title"] == "comfyq: local/0 is down" && headers[2]["Priority"] == "high")
        #expect(headers[3]["Title"] == "comfyq gave up on local/0" && headers[3]["Priority"] == "urgent")
        #expect((posts[3]["body"] as? String)?.contains("torch.OutOfMemoryError") == true)
        #expect(headers[4]["Title"] == "comfyq paused: disk full")
    }

    @Test func notifyDesktopUsesNotifySend() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let fake = try folder.write("notify-send", "#!/bin/sh\nprintf '%s|' \"$@\" >> '\(folder.path("calls"))'\necho >> '\(folder.path("calls"))'\n")
        chmod(fake, 0o755)
        let run = try await runBinary(
            ["hook", "test", Self.script("notify-desktop.lua")], environment: folder.environment.merging(["PATH": folder.root.path + ":/usr/bin:/bin"]) { $1 })
        #expect(run.status == .success, "\(run.stdout)\(run.stderr)")
        let calls = try String(contentsOfFile: folder.path("calls"), encoding: .utf8).split(separator: "\n")
        #expect(calls.count == 2)
        #expect(calls[0].hasPrefix("--app-name=comfyq|comfyq: sample/1 failed|node 8 (VAEDecode): torch.OutOfMemoryError"))
        #expect(calls[1] == "--app-name=comfyq|comfyq: 1 done, 1 failed|finished in 0 min 19 s|")
    }

    @Test func hookTestShowsCallsAndFailures() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let path = try folder.write("mine.lua", "function on_phase(e) comfyq.log('info', e.phase) end\nfunction on_complete(e) error('oops') end")
        let run = try await runBinary(["hook", "test", path, "--event", "complete"], environment: folder.environment)
        #expect(run.status == .failure)
        #expect(run.stdout.contains("→ on_complete(sample/0 done)\n  log mine.lua [warn] on_complete: \(path):2: oops\n"))
        #expect(run.stdout.hasSuffix("1 call, 1 failed\n"))
        let phases = try await runBinary(["hook", "test", path, "--event", "on_phase"], environment: folder.environment)
        #expect(phases.status == .success)
        #expect(phases.stdout.components(separatedBy: "  log mine.lua: ").count - 1 == 6)

        let misspelled = try folder.write("typo.lua", "function on_compelte(e) end")
        let refused = try await runBinary(["hook", "test", misspelled], environment: folder.environment)
        #expect(refused.status == .failure)
        #expect(refused.stderr.hasPrefix("Error: \(misspelled): on_compelte is not a hook function (did you mean on_complete?)"))
    }

    @Test func aBrokenHookStopsTheRunBeforeAnythingIsQueued() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let broken = try folder.write("broken.lua", "function on_complete(e)\n  return e.\nend")
        let run = try await runBinary(["run", "--simulate", try folder.job(2), "--hook", broken], environment: folder.environment)
        #expect(run.status == .failure)
        #expect(run.stderr.contains("Error: \(broken):3: <name> expected near 'end'"))
        let status = try await runBinary(["status", "--json"], environment: folder.environment)
        #expect(try JSONValue(parsing: status.stdout)["jobs"] == [])
    }

    @Test func aFailingHookIsDisabledAndTheBatchGoesOn() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let bad = try folder.write("bad.lua", "function on_phase(e)\n  error('broken on purpose')\nend")
        let run = try await runBinary(["run", "--simulate", try folder.job(2), "--hook", bad], environment: folder.environment)
        #expect(run.status == .success, "\(run.stderr)")
        #expect(run.stdout.contains("bad.lua [warn] on_phase: \(bad):2: broken on purpose"))
        #expect(run.stdout.contains("bad.lua [error] disabled after 5 failures in a row; the batch goes on without it"))
        #expect(run.stderr.contains("finished: 2 done, 0 failed"))
        #expect(run.stderr.contains("hook bad.lua: 5 calls, 5 failed (disabled)"))
    }

    @Test func aRunWithEveryKindOfHook() async throws {
        let listener = try await HTTPListener.start()
        defer { listener.stop() }
        let folder = try CLIHome("comfyq-hooks-cli")
        // A hook in the user's folder, one named by the job (with options), others by --hook.
        let userHook = folder.path("config/comfyq/hooks/done.lua")
        try "function on_batch_done(b) local f = io.open(comfyq.options.file or '\(folder.path("user-done"))', 'w') f:write(b.done .. ' ' .. b.skipped) f:close() end"
            .write(toFile: userHook, atomically: true, encoding: .utf8)
        let job = try folder.job(
            6, extra: "hooks: [{script: \"\(Self.script("timings-csv.lua"))\", options: {file: \"\(folder.path("timings.csv"))\"}}]")
        let run = try await runBinary(
            [
                "run", "--simulate", job, "--hook", Self.script("random-seed.lua"), "--hook", Self.script("discord-webhook.lua"),
                "--hook-opt", "discord-webhook.url=\(listener.url)/hook", "--hook-opt", "random-seed.skip=never",
            ], environment: folder.environment)
        #expect(run.status == .success, "\(run.stderr)")
        #expect(run.stderr.contains("hooks: timings-csv.lua, random-seed.lua, discord-webhook.lua, done.lua"))
        // timings-csv.lua: one row per output, with per-phase timings.
        let rows = try String(contentsOfFile: folder.path("timings.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 7)
        #expect(rows[0] == "finished,job,item,prompt_id,server,attempt,output,queued,setup,sampling,decoding,saving,total")
        #expect(rows.dropFirst().allSatisfy { $0.split(separator: ",").count == 13 && $0.contains(",tiny,") })
        // random-seed.lua: every sidecar records the seed it chose.
        let sidecars = try FileManager.default.contentsOfDirectory(atPath: folder.path("out")).filter { $0.hasSuffix(".json") }
        #expect(sidecars.count == 6)
        var seeds: Set<String> = []
        for name in sidecars {
            let sidecar = try JSONValue(parsing: String(contentsOfFile: folder.path("out/\(name)"), encoding: .utf8))
            let override = try #require(sidecar["hook_overrides"]?.arrayValue?.first)
            #expect(override["script"] == "random-seed.lua")
            let seed = try #require(override["overrides"]?["KSampler.seed"])
            #expect(sidecar["seed"]?.stringValue == seed.serialized())
            seeds.insert(seed.serialized())
        }
        #expect(seeds.count == 6)
        // discord-webhook.lua: the summary; the user's hook: its file.
        let posts = try await listener.requests()
        #expect(posts.count == 1)
        let parts = try #require(posts[0]["parts"] as? [[String: Any]], "\(posts[0])")
        #expect((try JSONValue(parsing: parts[0]["text"] as? String ?? ""))["content"]?.stringValue?.contains(": 6 done, 0 failed, 0 retried, 0 skipped") == true)
        // The job's contact sheet, as the run wrote it beside the job's page, was attached.
        let sheet = try Data(contentsOf: URL(fileURLWithPath: folder.path("out/contact-sheet.png")))
        #expect(parts[1]["filename"] as? String == "contact-sheet.png" && parts[1]["sha256"] as? String == FileHash.sha256([UInt8](sheet)))
        #expect(try String(contentsOfFile: folder.path("user-done"), encoding: .utf8) == "6 0")
    }

    @Test func hooksOfJobsAddedEarlierRunToo() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let hook = try folder.write("mark.lua", "function on_complete(e) io.open('\(folder.path("marks"))', 'a'):write(e.job, e.item, '|'):close() end")
        let job = try folder.job(2, name: "early", extra: #"hooks: [{script: "mark.lua", options: {}}]"#)
        #expect(try await runBinary(["add", job], environment: folder.environment).status == .success)
        // The script's text went into the queue with the job: the run needs no file (a run on
        // another machine sharing the queue has none).
        try FileManager.default.removeItem(atPath: hook)
        let run = try await runBinary(["run", "--simulate"], environment: folder.environment)
        #expect(run.status == .success, "\(run.stderr)")
        #expect(run.stderr.contains("hooks: mark.lua"))
        let marks = try String(contentsOfFile: folder.path("marks"), encoding: .utf8).split(separator: "|").sorted()
        #expect(marks == ["early0", "early1"])
        // Written from the queue under the run's state folder, named as the original.
        let stored = (FileManager.default.enumerator(atPath: folder.path("state/comfyq/stored-hooks"))?.allObjects as? [String]) ?? []
        #expect(stored.contains { $0.hasSuffix("/mark.lua") }, "\(stored)")
    }

    @Test func onSubmitCanSkipItems() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let job = try folder.job(3, extra: #"zip: {"Positive prompt.text": ["a cat", "a dog (skip me)", "a bird"]}, seeds: {start: 1, count: 1}"#)
        let run = try await runBinary(
            ["run", "--simulate", job, "--hook", Self.script("random-seed.lua"), "--hook-opt", "random-seed.skip=skip me", "--json-events", "--no-user-hooks"],
            environment: folder.environment)
        #expect(run.status == .success, "\(run.stderr)")
        #expect(run.stderr.contains("random-seed.lua: skipping tiny/1: its prompt contains \"skip me\""))
        #expect(run.stderr.contains("finished: 2 done, 0 failed, 1 skipped by hooks"))
        let status = try await runBinary(["status", "tiny", "--json"], environment: folder.environment)
        let items = try JSONValue(parsing: status.stdout)["items"]?.arrayValue ?? []
        #expect(items.map { $0["state"] } == ["done", "cancelled", "done"])
        #expect(items[1]["error"] == "skipped by random-seed.lua (on_submit returned false)")
    }

    @Test func hookOptionsNameTheirScript() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let run = try await runBinary(
            ["run", "--simulate", try folder.job(1), "--hook", Self.script("random-seed.lua"), "--hook-opt", "randomseed.input=x"], environment: folder.environment)
        #expect(run.status == .usage)
        #expect(run.stderr.hasPrefix("Error: --hook-opt 'randomseed.input=x': no hook script named 'randomseed' (scripts: random-seed)\n"))
    }

    @Test func luaJobFiles() async throws {
        let folder = try CLIHome("comfyq-hooks-cli")
        let valid = try await runBinary(["validate", Self.job("prompts-from-file.lua")], environment: folder.environment)
        #expect(valid.stdout.hasSuffix("\(Self.job("prompts-from-file.lua")): ok, 12 items (prompts-from-file)\n"))
        let broken = try folder.write("broken.lua", "local n = 3\nreturn { name = 'x', workflow = '\(Self.workflow)', seeds = {start = 1, count = n .. nil} }")
        let refused = try await runBinary(["validate", broken], environment: folder.environment)
        #expect(refused.status.rawValue == 65)
        #expect(refused.stderr == "Error: \(broken): line 2: attempt to concatenate a nil value\n")
        let typo = try folder.write("typo.lua", "return { workflow = '\(Self.workflow)', matrix = { ['KSampler.sede'] = {1, 2} } }")
        let checked = try await runBinary(["validate", typo], environment: folder.environment)
        #expect(checked.stderr.hasPrefix("Error: \(typo): matrix[\"KSampler.sede\"]: KSampler has no input \"sede\""))
    }
}

extension CLIHome {
    /// A job of `count` small images.
    func job(_ count: Int, name: String = "tiny", extra: String = "") throws -> String {
        try write(
            "\(name).json",
            """
            {name: "\(name)", workflow: "\(HookCommandTests.workflow)", seeds: {start: 1, count: \(count)},
             set: {"KSampler.steps": 3, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64, "Positive prompt.text": "a cat"},
             output: {folder: "out"}, \(extra)}
            """)
    }
}
