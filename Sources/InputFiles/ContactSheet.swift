/// One picture of a job's grid, for a notification or a chat: the thumbnails laid out as the
/// grid page lays them out, axis values as headers in `BitmapFont`, cells without an image
/// showing their state.
///
/// Any grid stays viewable and costs one band of the picture in memory: at most
/// `maxColumns` columns side by side (a wider grid continues in further strips below, each with
/// its own column headers), and no sheet taller than `maxSide` pixels (the rest continues on
/// the next sheet). `write` renders band by band, loading each cell's picture only for its band.
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
    /// The cell at (row, column), asked for when its band is drawn.
    public var cell: @Sendable (_ row: Int, _ column: Int) -> Cell
    public var cellSize = 192
    public var scale = 2
    public var gap = 6
    /// Columns side by side at most; the rest continue in strips below.
    public var maxColumns = 40
    /// No sheet is wider or taller than this (pixels).
    public var maxSide = 16_384

    public init(title: String, caption: String = "", columns: [String], rows: [String], cell: @escaping @Sendable (_ row: Int, _ column: Int) -> Cell) {
        self.title = title
        self.caption = caption
        self.columns = columns
        self.rows = rows
        self.cell = cell
    }

    /// A sheet of cells given up front (`cells[row][column]`).
    public init(title: String, caption: String = "", columns: [String], rows: [String], cells: [[Cell]]) {
        self.init(title: title, caption: caption, columns: columns, rows: rows) { row, column in
            row < cells.count && column < cells[row].count ? cells[row][column] : .text("")
        }
    }

    static let background = PNGImage.Colour(0x1B, 0x1B, 0x1F)
    static let panel = PNGImage.Colour(0x2C, 0x2C, 0x31)
    static let ink = PNGImage.Colour(0xE8, 0xE8, 0xEC)
    static let muted = PNGImage.Colour(0x9B, 0x9B, 0xA6)

    /// A horizontal band of a sheet.
    enum Band: Equatable {
        /// The title and caption (`continued`: on a sheet after the first).
        case title(continued: Bool)
        /// The column headers of a strip (its first column).
        case header(strip: Int)
        /// One row of cells of a strip.
        case row(Int, strip: Int)
    }

    var line: Int { BitmapFont.lineHeight * scale }
    var columnCount: Int { max(1, columns.count) }
    var stripWidth: Int { min(columnCount, maxColumns) }
    var strips: Int { (columnCount + maxColumns - 1) / maxColumns }
    var rowHeader: Int {
        guard !rows.allSatisfy(\.isEmpty) else { return 0 }
        let labelChars = max(8, rows.map(\.count).max() ?? 0)
        return min(BitmapFont.width(of: String(repeating: "m", count: labelChars), scale: scale), cellSize * 2) + gap * 2
    }
    var width: Int {
        min(
            maxSide,
            max(
                rowHeader + stripWidth * (cellSize + gap) + gap, BitmapFont.width(of: title, scale: scale) + gap * 2,
                BitmapFont.width(of: caption, scale: scale) + gap * 2))
    }

    func height(of band: Band) -> Int {
        switch band {
        case .title: gap + line + gap + (caption.isEmpty ? 0 : line + gap)
        case .header: line + gap
        case .row: cellSize + gap
        }
    }

    /// The bands of each sheet, in order.
    func sheets() -> [[Band]] {
        var sheets: [[Band]] = []
        var current: [Band] = [.title(continued: false)]
        var used = height(of: .title(continued: false))
        func add(_ band: Band, strip: Int) {
            if used + height(of: band) > maxSide && current.count > 1 {
                sheets.append(current)
                current = [.title(continued: true)]
                used = height(of: .title(continued: true))
                if case .row = band {
                    current.append(.header(strip: strip))
                    used += height(of: .header(strip: strip))
                }
            }
            current.append(band)
            used += height(of: band)
        }
        for strip in 0..<strips {
            add(.header(strip: strip), strip: strip)
            for row in 0..<max(1, rows.count) { add(.row(row, strip: strip), strip: strip) }
        }
        sheets.append(current)
        return sheets
    }

    /// Draws one band.
    func draw(_ band: Band, sheet: Int, of sheetCount: Int) -> PNGImage {
        var image = PNGImage(width: width, height: height(of: band), colour: Self.background)
        switch band {
        case .title(let continued):
            var heading = title
            if sheetCount > 1 { heading += " (sheet \(sheet + 1) of \(sheetCount)\(continued ? ", continued" : ""))" }
            BitmapFont.draw(heading, into: &image, x: gap, y: gap, scale: scale, colour: Self.ink)
            BitmapFont.draw(caption, into: &image, x: gap, y: gap + line + gap, scale: scale, colour: Self.muted)
        case .header(let strip):
            let columnChars = BitmapFont.characters(fitting: cellSize, scale: scale)
            for (offset, label) in columns.dropFirst(strip * maxColumns).prefix(maxColumns).enumerated() {
                let x = rowHeader + gap + offset * (cellSize + gap)
                BitmapFont.draw(String(label.prefix(columnChars)), into: &image, x: x, y: 0, scale: scale, colour: Self.ink)
            }
        case .row(let row, let strip):
            let rowChars = BitmapFont.characters(fitting: max(0, rowHeader - gap * 2), scale: scale)
            if row < rows.count {
                BitmapFont.draw(String(rows[row].prefix(rowChars)), into: &image, x: gap, y: (cellSize - line) / 2, scale: scale, colour: Self.muted)
            }
            let columnChars = BitmapFont.characters(fitting: cellSize, scale: scale)
            let first = strip * maxColumns
            for column in first..<min(first + maxColumns, columns.count) {
                let x = rowHeader + gap + (column - first) * (cellSize + gap)
                image.fill(x: x, y: 0, width: cellSize, height: cellSize, colour: Self.panel)
                switch cell(row, column) {
                case .image(let picture):
                    // Larger ones scaled down to fit; a small one (an img2img input's size)
                    // enlarged by a whole factor, pixels kept sharp.
                    let fitted = Self.enlarged(Thumbnail.scaled(picture, longSide: cellSize), toFit: cellSize)
                    image.paste(fitted, x: x + (cellSize - fitted.width) / 2, y: (cellSize - fitted.height) / 2)
                case .text(let text):
                    let shown = String(text.prefix(columnChars))
                    BitmapFont.draw(shown, into: &image, x: x + (cellSize - BitmapFont.width(of: shown, scale: scale)) / 2, y: (cellSize - line) / 2, scale: scale, colour: Self.muted)
                }
            }
        }
        return image
    }

    /// The whole grid as one picture in memory (the first sheet when it takes more than one):
    /// for small grids (hook samples, tests). Large ones go through `write`.
    public func render(cellSize: Int, scale: Int = 2, gap: Int = 6) -> PNGImage {
        var sized = self
        sized.cellSize = cellSize
        sized.scale = scale
        sized.gap = gap
        return sized.render()
    }

    /// As `render(cellSize:scale:gap:)` with this sheet's sizes.
    public func render() -> PNGImage {
        let sheets = sheets()
        let bands = sheets[0].map { draw($0, sheet: 0, of: sheets.count) }
        var picture = PNGImage(width: width, height: bands.reduce(0) { $0 + $1.height }, colour: Self.background)
        var y = 0
        for band in bands {
            picture.paste(band, x: 0, y: y)
            y += band.height
        }
        return picture
    }

    /// Writes the sheets: the first to `path` (or, from `first` on, to `sheetPath(path, first)`),
    /// the others beside it as `NAME-2.png`, `NAME-3.png`…. Returns their paths, in order.
    public func write(to path: String, startingAt first: Int = 1, level: Int32 = 6) throws -> [String] {
        let sheets = sheets()
        var written: [String] = []
        for (number, bands) in sheets.enumerated() {
            let target = Self.sheetPath(path, number: first + number)
            let writer = try PNGStreamWriter(path: target, width: width, height: bands.reduce(0) { $0 + height(of: $1) }, level: level)
            for band in bands { try writer.append(draw(band, sheet: number, of: sheets.count)) }
            try writer.finish()
            written.append(target)
        }
        return written
    }

    /// Where sheet `number` (from 1) of a set whose first is `path` goes: `path` itself, then
    /// `-2`, `-3`… before the extension.
    public static func sheetPath(_ path: String, number: Int) -> String {
        guard number > 1 else { return path }
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        guard let dot = path[slash...].lastIndex(of: "."), dot != slash else { return path + "-\(number)" }
        return String(path[..<dot]) + "-\(number)" + String(path[dot...])
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
