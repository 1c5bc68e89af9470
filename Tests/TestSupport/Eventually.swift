import Foundation

/// What `eventually` saw last when the condition never held.
public struct NotYet: Error, CustomStringConvertible {
    public var what: String
    public var seconds: Double
    public var lastSeen: String
    public init(what: String, seconds: Double, lastSeen: String) {
        self.what = what
        self.seconds = seconds
        self.lastSeen = lastSeen
    }

    public var description: String { "waited \(seconds) s for \(what); last seen: \(lastSeen)" }
}

/// Polls `probe` every `interval` until it returns a value, then returns it. On timeout it
/// throws `NotYet` with the last thing `describe` said, so a failure shows what was seen, not
/// just that time ran out. For conditions only; never a fixed sleep.
@discardableResult
public func eventually<T: Sendable>(
    _ what: String, timeout: Double = 20, interval: Double = 0.02, describe: @Sendable () async -> String = { "nothing" },
    _ probe: @Sendable () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
    while true {
        if let value = try await probe() { return value }
        if ContinuousClock.now >= deadline { throw NotYet(what: what, seconds: timeout, lastSeen: await describe()) }
        try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
    }
}
