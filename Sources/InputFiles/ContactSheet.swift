/// One picture of a job's grid, for a notification or a chat: the thumbnails laid out as the
/// grid page lays them out, axis values as headers in `BitmapFont`, cells without an image
/// showing their state.
public struct ContactSheet: Sendable {
    public enum Cell: Sendable, Equatable {
        case image(PNGImage)
        /// No picture: the item's state (pending, failed…).
        case text(String)
    }

    public var title: String
    /// A line under the title saying what the axes are.
    public var caption: String
    /// The across axis's values, left to right.
    public var columns: [String]
    /// The down axes' values, top to bottom.
    public var rows: [String]
    /// `cells[row][column]`.
    public var cells: [[Cell]]

    public init(title: String, caption: String = "", columns: [String], rows: [String], cells: [[Cell]]) {
        self.title = title
        self.caption = caption
        self.columns = columns
        self.rows = rows
        self.cells = cells
    }

    static let background = PNGImage.Colour(0x1B, 0x1B, 0x1F)
    static let panel = PNGImage.Colour(0x2C, 0x2C, 0x31)
    static let ink = PNGImage.Colour(0xE8, 0xE8, 0xEC)
    static let muted = PNGImage.Colour(0x9B, 0x9B, 0xA6)

    /// The sheet, each cell `cellSize` pixels square (images scaled to fit, centred), text at `scale`.
    public func render(cellSize: Int = 192, scale: Int = 2, gap: Int = 6) -> PNGImage {
        let line = BitmapFont.lineHeight * scale
        let labelChars = max(8, rows.map(\.count).max() ?? 0)
        let rowHeader = rows.allSatisfy(\.isEmpty) ? 0 : min(BitmapFont.width(of: String(repeating: "m", count: labelChars), scale: scale), cellSize * 2) + gap * 2
        let columnCount = max(1, cells.map(\.count).max() ?? 0)
        let width = max(rowHeader + columnCount * (cellSize + gap) + gap, BitmapFont.width(of: title, scale: scale) + gap * 2, BitmapFont.width(of: caption, scale: scale) + gap * 2)
        let captionHeight = caption.isEmpty ? 0 : line + gap
        let top = gap + line + gap + captionHeight + line + gap
        let height = top + cells.count * (cellSize + gap)
        var sheet = PNGImage(width: width, height: height, colour: Self.background)
        BitmapFont.draw(title, into: &sheet, x: gap, y: gap, scale: scale, colour: Self.ink)
        BitmapFont.draw(caption, into: &sheet, x: gap, y: gap + line + gap, scale: scale, colour: Self.muted)
        let columnChars = BitmapFont.characters(fitting: cellSize, scale: scale)
        for (index, label) in columns.enumerated() {
            let x = rowHeader + gap + index * (cellSize + gap)
            BitmapFont.draw(String(label.prefix(columnChars)), into: &sheet, x: x, y: gap + line + gap + captionHeight, scale: scale, colour: Self.ink)
        }
        let rowChars = BitmapFont.characters(fitting: max(0, rowHeader - gap * 2), scale: scale)
        for (rowIndex, row) in cells.enumerated() {
            let y = top + rowIndex * (cellSize + gap)
            if rowIndex < rows.count {
                BitmapFont.draw(String(rows[rowIndex].prefix(rowChars)), into: &sheet, x: gap, y: y + (cellSize - line) / 2, scale: scale, colour: Self.muted)
            }
            for (columnIndex, cell) in row.enumerated() {
                let x = rowHeader + gap + columnIndex * (cellSize + gap)
                sheet.fill(x: x, y: y, width: cellSize, height: cellSize, colour: Self.panel)
                switch cell {
                case .image(let image):
                    // Larger ones scaled down to fit; a small one (an img2img input's size)
                    // enlarged by a whole factor, pixels kept sharp.
                    let fitted = Self.enlarged(Thumbnail.scaled(image, longSide: cellSize), toFit: cellSize)
                    sheet.paste(fitted, x: x + (cellSize - fitted.width) / 2, y: y + (cellSize - fitted.height) / 2)
                case .text(let text):
                    let shown = String(text.prefix(columnChars))
                    BitmapFont.draw(shown, into: &sheet, x: x + (cellSize - BitmapFont.width(of: shown, scale: scale)) / 2, y: y + (cellSize - line) / 2, scale: scale, colour: Self.muted)
                }
            }
        }
        return sheet
    }

    /// `image` repeated `factor` times in each direction (nearest neighbour), the largest whole
    /// factor that still fits `size`; as it is when it already fills more than half.
    static func enlarged(_ image: PNGImage, toFit size: Int) -> PNGImage {
        let factor = size / max(image.width, image.height, 1)
        guard factor >= 2 else { return image }
        let width = image.width * factor
        var rgba = [UInt8](repeating: 0, count: width * image.height * factor * 4)
        for y in 0..<(image.height * factor) {
            for x in 0..<width {
                let source = ((y / factor) * image.width + x / factor) * 4
                let target = (y * width + x) * 4
                rgba[target..<(target + 4)] = image.rgba[source..<(source + 4)]
            }
        }
        return PNGImage(width: width, height: image.height * factor, rgba: rgba, hadAlpha: image.hadAlpha)
    }
}
