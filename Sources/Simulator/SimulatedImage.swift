import ComfyCore
import InputFiles

/// What the simulator draws for an output: a colour and a soft pattern from the parameters, and
/// the parameters themselves written on it in `BitmapFont`, so a grid of simulated outputs
/// shows which cell is which, and a test can read an image to know what made it.
public enum SimulatedImage {
    /// Where the label's lines start, and their scale, for an image of this size.
    public static func layout(width: Int, height: Int) -> (x: Int, y: Int, scale: Int) {
        let scale = max(1, min(width, height) / 160)
        return (3 * scale, 3 * scale, scale)
    }

    /// The label ink: pure white, which the backgrounds never are.
    public static let ink = PNGImage.Colour(255, 255, 255)

    public static func render(width: Int, height: Int, seed: UInt64, lines: [String]) -> PNGImage {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for byte in lines.joined(separator: "\n").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let hue = Int(hash % 360)
        let (r, g, b) = rgb(hue: hue)
        let pattern = Int(seed % 4)
        // The colour at each of 256 shades between 0.7 and 1 of it; the pattern picks a shade per pixel.
        let shades: [(UInt8, UInt8, UInt8)] = (0..<256).map { t in
            let shade = 178 + t * 77 / 255
            return (UInt8(r * shade / 255), UInt8(g * shade / 255), UInt8(b * shade / 255))
        }
        var rgba = [UInt8](repeating: 255, count: width * height * 4)
        rgba.withUnsafeMutableBufferPointer { pixels in
            let (cx, cy) = (width / 2, height / 2)
            let period = max(8, min(width, height) / 6)
            let across = (0..<width).map { $0 * 255 / max(1, width - 1) }
            for y in 0..<height {
                let down = y * 255 / max(1, height - 1)
                var o = y * width * 4
                for x in 0..<width {
                    // A shade that varies slowly across the image.
                    let t: Int
                    switch pattern {
                    case 0: t = across[x]
                    case 1: t = down
                    case 2: t = abs(((x + y) % (2 * period)) - period) * 255 / period
                    default:
                        let (dx, dy) = (x - cx, y - cy)
                        let d = Int(Double(dx * dx + dy * dy).squareRoot())
                        t = abs((d % (2 * period)) - period) * 255 / period
                    }
                    let colour = shades[t]
                    pixels[o] = colour.0
                    pixels[o + 1] = colour.1
                    pixels[o + 2] = colour.2
                    o += 4
                }
            }
        }
        var image = PNGImage(width: width, height: height, rgba: rgba, hadAlpha: false)
        let (x, y, scale) = layout(width: width, height: height)
        let box = PNGImage.Colour(UInt8(r / 4), UInt8(g / 4), UInt8(b / 4))
        let fitting = BitmapFont.characters(fitting: width - 2 * x, scale: scale)
        for (index, line) in lines.enumerated() {
            let top = y + index * BitmapFont.lineHeight * scale
            guard top + BitmapFont.glyphHeight * scale <= height else { break }
            let shown = String(line.prefix(fitting))
            image.fill(x: x - scale, y: top - scale, width: BitmapFont.width(of: shown, scale: scale) + 2 * scale, height: (BitmapFont.glyphHeight + 2) * scale, colour: box)
            BitmapFont.draw(shown, into: &image, x: x, y: top, scale: scale, colour: ink)
        }
        return image
    }

    /// Reads the label lines back from an image `render` drew.
    public static func read(_ image: PNGImage) -> [String] {
        let (x, y, scale) = layout(width: image.width, height: image.height)
        var lines: [String] = []
        var top = y
        while top + BitmapFont.glyphHeight * scale <= image.height {
            let line = BitmapFont.read(image, x: x, y: top, scale: scale) { $0 == ink }
            if line.isEmpty { break }
            lines.append(line)
            top += BitmapFont.lineHeight * scale
        }
        return lines
    }

    /// A saturated colour (channels 0–255) of `hue` degrees, light enough for white text on a dark box.
    static func rgb(hue: Int) -> (Int, Int, Int) {
        let sector = hue / 60
        let f = (hue % 60) * 255 / 60
        let (high, low) = (235, 90)
        let rising = low + (high - low) * f / 255
        let falling = high - (high - low) * f / 255
        switch sector {
        case 0: return (high, rising, low)
        case 1: return (falling, high, low)
        case 2: return (low, high, rising)
        case 3: return (low, falling, high)
        case 4: return (rising, low, high)
        default: return (high, low, falling)
        }
    }

    /// The parameters that made an output, walking up from its node: the sampler's seed, steps,
    /// cfg, sampler and scheduler (and denoise below 1), the model, the positive prompt's
    /// start, the size, and the input image for img2img.
    static func lines(for node: WorkflowNode, in workflow: Workflow, width: Int, height: Int) -> [String] {
        var lines: [String] = []
        var current: WorkflowNode? = node
        var sampler: WorkflowNode?
        var input: String?
        var visited = 0
        while let this = current, visited < 100 {
            visited += 1
            if sampler == nil, this.inputs["seed"] ?? this.inputs["noise_seed"] != nil { sampler = this }
            if this.classType == "LoadImage" || this.classType == "LoadImageMask" { input = this.inputs["image"]?.stringValue }
            current = Simulator.upstream(of: this, in: workflow)
        }
        func text(_ value: JSONValue?) -> String? { value.flatMap { $0.stringValue ?? $0.numberValue?.literal } }
        func follow(_ name: String, from node: WorkflowNode?, to keys: [String]) -> String? {
            var current = node.flatMap { $0.inputs[name].flatMap(Workflow.link(in:)) }.flatMap { workflow[$0.node] }
            var hops = 0
            while let this = current, hops < 20 {
                hops += 1
                if let found = keys.lazy.compactMap({ text(this.inputs[$0]) }).first { return found }
                current = ["model", "clip", "conditioning"].lazy.compactMap { this.inputs[$0].flatMap(Workflow.link(in:)) }.first.flatMap { workflow[$0.node] }
            }
            return nil
        }
        if let sampler {
            if let seed = text(sampler.inputs["seed"] ?? sampler.inputs["noise_seed"]) { lines.append("seed \(seed)") }
            var settings: [String] = []
            if let steps = text(sampler.inputs["steps"]) { settings.append("steps \(steps)") }
            if let cfg = text(sampler.inputs["cfg"]) { settings.append("cfg \(cfg)") }
            if !settings.isEmpty { lines.append(settings.joined(separator: " ")) }
            let names = [text(sampler.inputs["sampler_name"]), text(sampler.inputs["scheduler"])].compactMap { $0 }
            if !names.isEmpty { lines.append(names.joined(separator: " ")) }
            if let denoise = sampler.inputs["denoise"]?.numberValue, denoise.double < 1 { lines.append("denoise \(denoise.literal)") }
            if let model = follow("model", from: sampler, to: ["ckpt_name", "unet_name"]) {
                lines.append(String(model.split(separator: "/").last ?? Substring(model)).replacingOccurrences(of: ".safetensors", with: ""))
            }
            if let prompt = follow("positive", from: sampler, to: ["text"]) { lines.append(prompt) }
        }
        if let input { lines.append("input \(input)") }
        lines.append("\(width)x\(height)")
        return lines
    }
}
