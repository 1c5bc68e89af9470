import Dispatch
import Foundation
import Synchronization
import WebSocket

/// One accepted connection. Writes go through a queue drained by its own thread, so the worker
/// never blocks on a slow client and `--latency` can hold every message back without reordering.
public final class ClientConnection: Sendable {
    public let socket: TCPSocket
    public let latency: Double
    /// What waits to go out; `closed`: cut, nothing more goes out; `closing`: what waits goes
    /// out (at its time), then the writer ends.
    private let outbox = Mutex<(items: [(due: ContinuousClock.Instant, bytes: [UInt8])], closed: Bool, closing: Bool)>(([], false, false))
    private let ready = DispatchSemaphore(value: 0)
    private let writerDone = DispatchSemaphore(value: 0)

    public init(socket: TCPSocket, latency: Double) {
        self.socket = socket
        self.latency = latency
        let thread = Thread { [self] in sendLoop() }
        thread.name = "comfyq-sim writer"
        thread.start()
    }

    /// Queues bytes to go out after the configured latency.
    public func send(_ bytes: [UInt8]) {
        let due = ContinuousClock.now + .milliseconds(Int(latency * 1000))
        let accepted = outbox.withLock { box -> Bool in
            guard !box.closed && !box.closing else { return false }
            box.items.append((due, bytes))
            return true
        }
        if accepted { ready.signal() }
    }

    /// Sends a text message as an unmasked WebSocket frame (the server role).
    public func sendText(_ text: String) { send(FrameEncoder.encode(Frame(opcode: .text, payload: Array(text.utf8)), maskKey: nil)) }

    public func sendBinary(_ bytes: [UInt8]) { send(FrameEncoder.encode(Frame(opcode: .binary, payload: bytes), maskKey: nil)) }

    /// Cut, or closing: nothing more goes out (a stream's writer stops on this).
    public var isClosed: Bool { outbox.withLock { $0.closed || $0.closing } }

    /// Cuts the connection now (a dropped WebSocket, a crashed server).
    public func drop() {
        outbox.withLock { box in
            box.closed = true
            box.items.removeAll()
        }
        ready.signal()
        socket.shutdown()
    }

    /// Sends what is still queued (a response held back by `--latency` must not be lost because
    /// the request said `Connection: close`), waits for the writer thread, then releases the
    /// descriptor. Called once, by the thread that reads the connection, when it is done.
    public func close() {
        outbox.withLock { $0.closing = true }
        ready.signal()
        writerDone.wait()
        socket.shutdown()
        socket.close()
    }

    private func sendLoop() {
        defer { writerDone.signal() }
        while true {
            ready.wait()
            // Take everything that is due and write it in one call: fewer wake-ups and syscalls.
            let now = ContinuousClock.now
            let (batch, nextDue, closed) = outbox.withLock { box -> ([UInt8], ContinuousClock.Instant?, Bool) in
                var bytes: [UInt8] = []
                var taken = 0
                while taken < box.items.count, box.items[taken].due <= now {
                    bytes += box.items[taken].bytes
                    taken += 1
                }
                box.items.removeFirst(taken)
                if taken > 1 { for _ in 1..<taken { _ = ready.wait(timeout: .now()) } }  // consume their signals
                // Cut, or closing with nothing left after this batch: the writer ends.
                return (bytes, box.items.first?.due, box.closed || (box.closing && box.items.isEmpty))
            }
            if !batch.isEmpty {
                do { try socket.write(batch) } catch {
                    drop()
                    return
                }
            }
            if closed { return }
            if let nextDue {
                let wait = nextDue - ContinuousClock.now
                if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.attoseconds) * 1e-18 + Double(wait.components.seconds)) }
                ready.signal()  // look again now that it is due
            }
        }
    }
}
