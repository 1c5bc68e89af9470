/// A workflow saved inside a picture, video or sound, as ComfyUI's save nodes write it: the
/// API form that ran (`prompt`) and the page's graph (`workflow`, the UI format), either of which
/// may be missing.
public struct EmbeddedWorkflow: Sendable, Equatable {
    /// The container (`PNG`, `WebP`, `FLAC`), for messages.
    public var format: String
    /// The API form, as text (JSON).
    public var prompt: String?
    /// The UI form, as text (JSON).
    public var workflow: String?

    public init(format: String, prompt: String? = nil, workflow: String? = nil) {
        self.format = format
        self.prompt = prompt
        self.workflow = workflow
    }
}
