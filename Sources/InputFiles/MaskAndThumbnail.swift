import Foundation

/// Masks for `LoadImage`: ComfyUI takes an image's mask from its alpha channel (transparent =
/// masked, as its mask editor paints), and `/upload/mask` copies a mask image's alpha into the
/// uploaded image. A mask file is used as it is when it has alpha; a greyscale or colour mask
/// without alpha (white = where to paint) becomes alpha = 255 − brightness.
public enum MaskImage {
    public static func alphaMask(_ bytes: [UInt8]) throws(PNGImage.Failure) -> [UInt8] {
        let image = try PNGImage(decoding: bytes)
        if image.hadAlpha { return bytes }
        var rgba = [UInt8](repeating: 0, count: image.rgba.count)
        for pixel in 0..<(image.width * image.height) {
            let o = pixel * 4
            let brightness = (Int(image.rgba[o]) * 299 + Int(image.rgba[o + 1]) * 587 + Int(image.rgba[o + 2]) * 114) / 1000
            rgba[o + 3] = UInt8(255 - brightness)
        }
        return PNGImage(width: image.width, height: image.height, rgba: rgba).encoded()
    }
}

/// Thumbnails of outputs: decoded, scaled down by area averaging (every source pixel counts,
/// so noise and fine detail average out instead of aliasing), encoded as PNG.
public enum Thumbnail {
    /// At most `longSide` pixels on the long side (an image already that small is kept as it is).
    public static func make(_ bytes: [UInt8], longSide: Int = 256) throws(PNGImage.Failure) -> [UInt8] {
        let image = try PNGImage(decoding: bytes)
        return scaled(image, longSide: longSide).encoded(level: 1)
    }

    public static func scaled(_ image: PNGImage, longSide: Int) -> PNGImage {
        let scale = Double(max(image.width, image.height)) / Double(longSide)
        guard scale > 1 else { return image }
        let width = max(1, Int((Double(image.width) / scale).rounded()))
        let height = max(1, Int((Double(image.height) / scale).rounded()))
        var out = [UInt8](repeating: 0, count: width * height * 4)
        image.rgba.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for y in 0..<height {
                    let top = y * image.height / height
                    let bottom = max(top + 1, (y + 1) * image.height / height)
                    for x in 0..<width {
                        let left = x * image.width / width
                        let right = max(left + 1, (x + 1) * image.width / width)
                        var (r, g, b, a) = (0, 0, 0, 0)
                        for sy in top..<bottom {
                            var pixel = source.baseAddress! + (sy * image.width + left) * 4
                            for _ in left..<right {
                                r &+= Int(pixel[0])
                                g &+= Int(pixel[1])
                                b &+= Int(pixel[2])
                                a &+= Int(pixel[3])
                                pixel += 4
                            }
                        }
                        let count = (bottom - top) * (right - left)
                        let index = (y * width + x) * 4
                        target[index] = UInt8(r / count)
                        target[index + 1] = UInt8(g / count)
                        target[index + 2] = UInt8(b / count)
                        target[index + 3] = UInt8(a / count)
                    }
                }
            }
        }
        return PNGImage(width: width, height: height, rgba: out, hadAlpha: image.hadAlpha)
    }

    /// Where an output's thumbnail goes: `.thumbs/NAME.png` beside it.
    public static func path(for output: String) -> String {
        let url = URL(fileURLWithPath: output)
        return url.deletingLastPathComponent().appendingPathComponent(".thumbs").appendingPathComponent(url.deletingPathExtension().lastPathComponent + ".png").path
    }
}
