import ComfyCore

/// The hook API (version 1) as data: every table a hook receives, every hook function and the
/// `comfyq` library, each with its type and meaning. The LuaLS definitions shipped in
/// `scripts/types/comfyq.lua` are rendered from it (`comfyq hook types`), and the tests check the
/// events of real runs against it, so editors, docs and events cannot drift apart.
public enum HookSchema {
    /// One key of a table: its LuaLS type (`string`, `integer`, `comfyq.Node`, `string[]`,
    /// `"a"|"b"`), whether it may be absent, and what it means.
    public struct Field: Sendable {
        public var name: String
        public var type: String
        public var optional: Bool
        public var doc: String

        init(_ name: String, _ type: String, optional: Bool = false, _ doc: String) {
            self.name = name
            self.type = type
            self.optional = optional
            self.doc = doc
        }
    }

    public struct Class: Sendable {
        public var name: String
        public var doc: String
        public var fields: [Field]

        public func field(_ name: String) -> Field? { fields.first { $0.name == name } }
    }

    public struct Function: Sendable {
        public var name: String
        public var doc: String
        public var parameters: [Field]
        /// LuaLS `@return` lines: `integer? status`.
        public var returns: [String]
    }

    /// String types with a fixed set of values.
    public static let aliases: [(name: String, doc: String, values: [String])] = [
        ("comfyq.Phase", "Where a prompt is.", ["queued", "setup", "sampling", "decoding", "saving", "done", "failed", "interrupted", "cancelled"]),
        ("comfyq.ServerState", "A server's health.", ["checking", "starting", "up", "down", "restarting", "given up", "stopped"]),
        ("comfyq.LogLevel", "How `comfyq run` shows a log line.", ["debug", "info", "warn", "error"]),
    ]

    public static let classes: [Class] = [
        Class(
            name: "comfyq.PromptEvent", doc: "What `on_submit`, `on_phase`, `on_progress`, `on_complete` and `on_error` receive.",
            fields: [
                Field("event", #""submit"|"phase"|"progress"|"complete"|"error""#, "Which hook this is for."),
                Field("job", "string", "The job's name."),
                Field("item", "integer", "The item's index in its job, from 0 (`status` calls it job/item)."),
                Field("prompt_id", "string", "ComfyUI's prompt id for this attempt (a new one for each attempt)."),
                Field("server", "string", "The server's name from the servers file, or its URL."),
                Field(
                    "params", "table<string, string|number|boolean|comfyq.InputFile>",
                    "The item's parameters by address: `{[\"KSampler.seed\"] = 42}`; an input file is a `comfyq.InputFile`."),
                Field("attempt", "integer", "1 for the first attempt."),
                Field("elapsed", "number", "Seconds since the attempt was claimed."),
                Field("phase", "comfyq.Phase", optional: true, "The prompt's phase (`queued` for `on_submit`)."),
                Field("previous_phase", "comfyq.Phase", optional: true, "`on_phase`: the phase it left."),
                Field("node", "comfyq.Node", optional: true, "The node running now (or last); absent before a node runs."),
                Field("sampler", "integer", optional: true, "Which sampler runs, from 1 (0 before the first)."),
                Field("samplers", "integer", optional: true, "How many samplers the prompt runs."),
                Field("step", "integer", optional: true, "The current sampler's step (0 before sampling)."),
                Field("steps", "integer", optional: true, "The current sampler's step count (0 before sampling)."),
                Field("fraction", "number", optional: true, "Overall progress 0…1, weighted by phase; never decreases; 1 only when done."),
                Field(
                    "preview", "string", optional: true,
                    "The latest preview of the image being sampled, as a file (when the server sends previews); copy it to keep it."),
                Field("outputs", "string[]", optional: true, "`on_complete`: the saved files' paths."),
                Field("thumbnails", "string[]", optional: true, "`on_complete`: the outputs' 256-pixel PNG thumbnails."),
                Field("timings", "comfyq.Timings", optional: true, "Seconds spent in each phase so far."),
                Field("error", "comfyq.Error", optional: true, "`on_error`: what went wrong."),
                Field("will_retry", "boolean", optional: true, "`on_error`: the item goes back to the queue for another attempt."),
            ]),
        Class(
            name: "comfyq.InputFile", doc: "A local file given as an input (uploaded to the server that runs the item).",
            fields: [
                Field("file", "string", "Its absolute path."),
                Field("size", "integer", "Its size in bytes when the job was added."),
                Field("mtime", "number", "Its modification time (Unix seconds) when the job was added."),
                Field("sha256", "string", optional: true, "Its SHA-256, once uploaded."),
                Field("uploaded_as", "string", optional: true, "Its name on the server, once uploaded."),
                Field("mask", "comfyq.InputFile", optional: true, "The mask uploaded with it, for inpainting."),
            ]),
        Class(
            name: "comfyq.Node", doc: "A node of the prompt's graph.",
            fields: [
                Field("id", "string", "Its id in the graph."),
                Field("class_type", "string", optional: true, "Its type: `KSampler`, `VAEDecode`…"),
                Field("title", "string", optional: true, "Its `_meta.title`, when set."),
            ]),
        Class(
            name: "comfyq.Timings", doc: "Seconds spent in each phase.",
            fields: ["queued", "setup", "sampling", "decoding", "saving"].map { Field($0, "number", optional: true, "Seconds \($0).") }),
        Class(
            name: "comfyq.Error", doc: "Why an attempt failed.",
            fields: [
                Field("message", "string", "One line."),
                Field("node", "string", optional: true, "The node ComfyUI named, when it did."),
                Field("class_type", "string", optional: true, "That node's type."),
                Field("exception_type", "string", optional: true, "The Python exception: `torch.OutOfMemoryError`…"),
            ]),
        Class(
            name: "comfyq.BatchStart", doc: "What `on_batch_start` receives.",
            fields: [
                Field("event", #""batch_start""#, "Always `batch_start`."),
                Field("pending", "integer", "Items waiting when the run started."),
                Field("servers", "string[]", "The servers' names (or URLs)."),
                Field("concurrency", "integer", "Prompts in flight per server."),
                Field("watch", "boolean", "Whether the run was started with `--watch`."),
                Field("started_at", "number", "Unix time in seconds."),
            ]),
        Class(
            name: "comfyq.BatchDone", doc: "What `on_batch_done` receives.",
            fields: [
                Field("event", #""batch_done""#, "Always `batch_done`."),
                Field("done", "integer", "Items done in this run."),
                Field("failed", "integer", "Items failed in this run."),
                Field("retried", "integer", "Attempts sent back to the queue."),
                Field("skipped", "integer", "Items an `on_submit` skipped."),
                Field("held", "integer", "Items of the run's jobs held: no server can run them (pre-flight)."),
                Field("held_jobs", "comfyq.Held[]", "Each job with held items: `job`, `items`, `reason`."),
                Field("elapsed", "number", "Seconds since the run started."),
                Field("servers", "string[]", "The servers' names (or URLs)."),
                Field("finished_at", "number", "Unix time in seconds."),
                Field("failures", "comfyq.Failure[]", "The failed items (at most 100)."),
                Field("reports", "comfyq.Report[]", "Each job whose items finished in this run, with its page."),
                Field("stop_reason", "string", optional: true, "Set when the run stopped early: `stopped by the user`, `no server answers`…"),
            ]),
        Class(
            name: "comfyq.Idle", doc: "What `on_idle` receives (with `--watch`, when the queue has drained).",
            fields: [
                Field("event", #""idle""#, "Always `idle`."),
                Field("done", "integer", "Items done so far."),
                Field("failed", "integer", "Items failed so far."),
                Field("retried", "integer", "Attempts sent back to the queue."),
                Field("skipped", "integer", "Items an `on_submit` skipped."),
                Field("held", "integer", "Items of the run's jobs held: no server can run them (pre-flight)."),
                Field("held_jobs", "comfyq.Held[]", "Each job with held items: `job`, `items`, `reason`."),
                Field("elapsed", "number", "Seconds since the run started."),
            ]),
        Class(
            name: "comfyq.Held", doc: "A job with items held by pre-flight, in `on_batch_done` and `on_idle`.",
            fields: [
                Field("job", "string", "The job's name."),
                Field("items", "integer", "How many of its items are held."),
                Field("reason", "string", "Why no server can run the first of them (one line)."),
            ]),
        Class(
            name: "comfyq.Failure", doc: "A failed item in `on_batch_done`.",
            fields: [
                Field("job", "string", "The job's name."),
                Field("item", "integer", "The item's index."),
                Field("prompt_id", "string", "Its last attempt's prompt id."),
                Field("error", "string", "Why, in one line."),
            ]),
        Class(
            name: "comfyq.Report", doc: "A job's report in `on_batch_done`.",
            fields: [
                Field("job", "string", "The job's name."),
                Field("page", "string", "Its `index.html`, kept up to date as items finished."),
                Field("contact_sheet", "string", optional: true, "The job's grid as a PNG (the first sheet of a large job)."),
                Field("contact_sheets", "string[]", "Every sheet: a large job's grid is split, one set per 1,000 items, no side over 16,384 px."),
            ]),
        Class(
            name: "comfyq.ServerEvent", doc: "What `on_server` receives: a server's health changed.",
            fields: [
                Field("event", #""server""#, "Always `server`."),
                Field("server", "string", "Its name (`gpu0`, `local/1`), or its URL when it has no name."),
                Field("url", "string", "Its URL."),
                Field("state", "comfyq.ServerState", "Its state now."),
                Field("previous_state", "comfyq.ServerState", "The state it left."),
                Field("reason", "string", "Why, in one line."),
                Field("restarts", "integer", "Restarts within the last hour."),
                Field("down_for", "number", optional: true, "On coming back up: seconds it was unavailable."),
                Field("log_tail", "string[]", optional: true, "Supervised servers, when not up: the last lines of its log."),
            ]),
        Class(
            name: "comfyq.PauseEvent", doc: "What `on_pause` receives: a full disk or a queue that cannot be written paused the run.",
            fields: [
                Field("event", #""pause""#, "Always `pause`."),
                Field("reason", "string", "What failed, naming the file."),
                Field("folder", "string", "The folder whose filesystem is full."),
                Field("needed_bytes", "integer", "The room the run waits for."),
                Field("free_bytes", "integer", optional: true, "The room there was."),
                Field("in_flight", "integer", "Prompts in flight; they finish and wait on their servers."),
            ]),
        Class(
            name: "comfyq.ResumeEvent", doc: "What `on_resume` receives: the pause ended.",
            fields: [
                Field("event", #""resume""#, "Always `resume`."),
                Field("reason", "string", "What had failed."),
                Field("folder", "string", "The folder that was full."),
                Field("paused_for", "number", "Seconds the run was paused."),
            ]),
    ]

    /// The table class each hook receives.
    public static func className(for kind: HookEventKind) -> String {
        switch kind {
        case .submit, .phase, .progress, .complete, .error: "comfyq.PromptEvent"
        case .batchStart: "comfyq.BatchStart"
        case .batchDone: "comfyq.BatchDone"
        case .idle: "comfyq.Idle"
        case .server: "comfyq.ServerEvent"
        case .pause: "comfyq.PauseEvent"
        case .resume: "comfyq.ResumeEvent"
        }
    }

    /// What each hook is for (the parameter's name as the README writes it).
    public static func hook(_ kind: HookEventKind) -> Function {
        let (parameter, doc): (String, String) =
            switch kind {
            case .batchStart: ("b", "Once, when `comfyq run` has checked its servers, before the first submission.")
            case .submit:
                ("e", "Before each attempt of an item is posted. Return nothing or `true` to submit it as it is, `false` to skip it, or a table `{[\"NODE.input\"] = value}` of overrides.")
            case .phase: ("e", "Each phase change of a prompt: `queued → setup → sampling → decoding → saving → done`, or `failed`, `interrupted`, `cancelled`.")
            case .progress: ("e", "Progress within a phase (sampler steps, the next node), at most twice a second per prompt.")
            case .complete: ("e", "An item is done: ComfyUI succeeded and every output is downloaded and named.")
            case .error: ("e", "An attempt failed; `e.will_retry` says whether the item runs again.")
            case .batchDone: ("b", "Once, when the run ends (queue empty, Ctrl-C, no server).")
            case .idle: ("b", "With `--watch`: the queue has drained; called again after the next item runs.")
            case .server: ("s", "A server's health changed.")
            case .pause: ("p", "A full disk or a queue that cannot be written paused the run.")
            case .resume: ("r", "The pause ended: there is room again, and the run goes on by itself.")
            }
        return Function(
            name: kind.function, doc: doc, parameters: [Field(parameter, className(for: kind), "")],
            returns: kind == .submit ? ["boolean|table<string, any>|nil"] : [])
    }

    /// The `comfyq` table scripts get.
    public static let library: [Function] = [
        Function(
            name: "comfyq.log", doc: "A line in `comfyq run`'s output, as `script.lua: message` (with `[level]` unless info). `comfyq.log(message)` logs at info.",
            parameters: [Field("level", "comfyq.LogLevel|string", ""), Field("message", "string", optional: true, "")], returns: ["boolean"]),
        Function(
            name: "comfyq.notify", doc: "A desktop notification through `notify-send`; `false` when there is none (it went to the log instead).",
            parameters: [Field("title", "string", ""), Field("body", "string", optional: true, "")], returns: ["boolean"]),
        Function(
            name: "comfyq.http_post",
            doc: "POSTs `body`: a string, a file `{file = PATH, type = \"image/png\"}`, or a multipart form `{fields = {…}, files = {{name = …, path = …}}}`. Any HTTP status is a success; `nil, message` when the request could not be made.",
            parameters: [
                Field("url", "string", ""), Field("body", "string|table", optional: true, ""), Field("headers", "table<string, string>", optional: true, ""),
                Field("timeout", "number", optional: true, "seconds, default 10"),
            ], returns: ["integer? status", "string body_or_error"]),
        Function(
            name: "comfyq.http_get", doc: "GETs `url`. Any HTTP status is a success; `nil, message` when the request could not be made.",
            parameters: [
                Field("url", "string", ""), Field("headers", "table<string, string>", optional: true, ""),
                Field("timeout", "number", optional: true, "seconds, default 10"),
            ], returns: ["integer? status", "string body_or_error"]),
        Function(
            name: "comfyq.exec",
            doc: "Runs a program without a shell, found on PATH; its stdout and stderr together (at most 1 MB). A signal gives 128 + its number; `nil, message` on a timeout.",
            parameters: [Field("argv", "string[]", ""), Field("timeout", "number", optional: true, "seconds, default 10")],
            returns: ["integer? exit_code", "string output_or_error"]),
        Function(
            name: "comfyq.json.encode", doc: "A JSON string: sequences become lists, other tables objects (keys sorted).",
            parameters: [Field("value", "any", "")], returns: ["string? json", "string? error"]),
        Function(
            name: "comfyq.json.decode", doc: "The value of a JSON text; `null` becomes nil.", parameters: [Field("text", "string", "")],
            returns: ["any value", "string? error"]),
        Function(name: "comfyq.env", doc: "An environment variable's value, or nil.", parameters: [Field("name", "string", "")], returns: ["string?"]),
    ]
}
