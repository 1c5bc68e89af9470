import CZlib
import Foundation

/// An opaque (RGB) PNG written to a file in bands of rows, compressed as they come: memory is
/// one band and zlib's state, whatever the picture's height. Written beside the target and
/// renamed into place by `finish`, so a reader never sees half a file.
public final class PNGStreamWriter {
    public let width: Int
    public let height: Int
    private let path: String
    private let partial: String
    private let file: FileHandle
    private var stream = z_stream()
    private var rowsWritten = 0
    private var out = [UInt8](repeating: 0, count: 1 << 16)
    private var finished = false

    public struct WriteError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(path: String, width: Int, height: Int, level: Int32 = 6) throws {
        precondition(width > 0 && height > 0)
        self.path = path
        self.width = width
        self.height = height
        partial = path + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: nil), let file = FileHandle(forWritingAtPath: partial) else {
            throw WriteError(description: "\(path): cannot write it")
        }
        self.file = file
        guard comfyq_deflate_init2(&stream, level, 15, 8) == Z_OK else { throw WriteError(description: "\(path): zlib would not start") }
        var head = PNGImage.signature
        PNGImage.chunk("IHDR", PNGImage.bytes32(UInt32(width)) + PNGImage.bytes32(UInt32(height)) + [8, 2, 0, 0, 0], into: &head)
        try write(head)
    }

    deinit {
        deflateEnd(&stream)
        if !finished {
            try? file.close()
            try? FileManager.default.removeItem(atPath: partial)
        }
    }

    /// Appends `band`'s rows (as wide as the picture; its alpha is dropped).
    public func append(_ band: PNGImage) throws {
        precondition(band.width == width && rowsWritten + band.height <= height, "a band must be as wide as the picture and fit in it")
        var raw = [UInt8](repeating: 0, count: (width * 3 + 1) * band.height)
        band.rgba.withUnsafeBufferPointer { source in
            var t = 0
            var s = 0
            for _ in 0..<band.height {
                raw[t] = 0  // filter: none
                t += 1
                for _ in 0..<width {
                    raw[t] = source[s]
                    raw[t + 1] = source[s + 1]
                    raw[t + 2] = source[s + 2]
                    t += 3
                    s += 4
                }
            }
        }
        rowsWritten += band.height
        try compress(raw, flush: Z_NO_FLUSH)
    }

    /// Ends the picture (every row must have come) and moves it into place.
    public func finish() throws {
        precondition(rowsWritten == height, "\(height - rowsWritten) rows missing")
        try compress([], flush: Z_FINISH)
        var tail: [UInt8] = []
        PNGImage.chunk("IEND", [], into: &tail)
        try write(tail)
        try file.close()
        finished = true
        do {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: partial, toPath: path)
        } catch {
            throw WriteError(description: "\(path): cannot write it: \(error.localizedDescription)")
        }
    }

    /// Deflates `data`; every full output buffer becomes one IDAT chunk.
    private func compress(_ data: [UInt8], flush: Int32) throws {
        try data.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = UInt32(input.count)
            while true {
                let result = out.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = UInt32(buffer.count)
                    return CZlib.deflate(&stream, flush)
                }
                guard result == Z_OK || result == Z_STREAM_END || result == Z_BUF_ERROR else {
                    throw WriteError(description: "\(path): zlib failed (\(result))")
                }
                let produced = out.count - Int(stream.avail_out)
                if produced > 0 {
                    var chunk: [UInt8] = []
                    PNGImage.chunk("IDAT", Array(out[0..<produced]), into: &chunk)
                    try write(chunk)
                }
                if flush == Z_FINISH ? result == Z_STREAM_END : (stream.avail_in == 0 && stream.avail_out > 0) { break }
            }
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        do { try file.write(contentsOf: Data(bytes)) } catch {
            throw WriteError(description: "\(path): cannot write it: \(error.localizedDescription)")
        }
    }
}
