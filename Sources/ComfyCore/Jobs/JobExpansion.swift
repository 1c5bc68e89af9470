extension JobSpec {
    /// How many items the job expands to.
    public var itemCount: Int {
        matrix.reduce(1) { $0 * $1.values.count } * (zip.first?.values.count ?? 1) * (seeds?.count ?? 1) * repeatCount
    }

    /// Every item, in order: matrix combinations (first key slowest), then zip positions, then
    /// seeds, then repeats. `random` draws the seeds of a `{"random": n}` sweep.
    public func expand(random: () -> UInt64) -> [JobItem] {
        var items: [JobItem] = []
        items.reserveCapacity(itemCount)
        let seedValues: [UInt64?]
        switch seeds?.values {
        case .range(let start, let count)?: seedValues = (0..<count).map { start &+ UInt64($0) }
        case .random(let count)?: seedValues = (0..<count).map { _ in random() & 0x3FFF_FFFF_FFFF_FFFF }
        case nil: seedValues = [nil]
        }
        let zipLength = zip.first?.values.count ?? 1
        var combination = [Int](repeating: 0, count: matrix.count)
        while true {
            for position in 0..<zipLength {
                for seed in seedValues {
                    for _ in 0..<repeatCount {
                        var parameters: [(address: String, value: JSONValue)] = fixed.map { ($0.address.written, $0.value) }
                        for (slot, sweep) in matrix.enumerated() { parameters.append((sweep.address.written, sweep.values[combination[slot]])) }
                        for sweep in zip { parameters.append((sweep.address.written, sweep.values[position])) }
                        if let seed, let sweep = seeds { parameters.append((sweep.address.written, .number(JSONNumber(seed)))) }
                        items.append(JobItem(index: items.count, parameters: parameters, seed: seed))
                    }
                }
            }
            // The next matrix combination, odometer style (last key fastest).
            var slot = matrix.count - 1
            while slot >= 0 {
                combination[slot] += 1
                if combination[slot] < matrix[slot].values.count { break }
                combination[slot] = 0
                slot -= 1
            }
            if slot < 0 { break }
        }
        return items
    }

    /// Every address the job may set, written as in the file.
    public var addresses: [String: ParameterAddress] {
        var result: [String: ParameterAddress] = [:]
        for address in fixed.map(\.address) + matrix.map(\.address) + zip.map(\.address) + (seeds.map { [$0.address] } ?? []) {
            result[address.written] = address
        }
        return result
    }
}

extension Workflow {
    /// The graph with an item's parameters applied (`parameters` keyed by written address).
    public func applying(_ parameters: JSONValue, addresses: [String: ParameterAddress]) -> Workflow {
        var graph = self
        for (written, value) in parameters.objectValue ?? JSONObject() {
            guard let address = addresses[written] ?? AddressResolver(workflow: self).resolve(written).success else { continue }
            graph.set(node: address.nodeID, input: address.input, to: value)
        }
        return graph
    }
}

extension Result {
    var success: Success? { if case .success(let value) = self { value } else { nil } }
}
