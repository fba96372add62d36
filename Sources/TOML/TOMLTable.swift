extension TOML {
    /// A table: its keys in the order the document first wrote them (a table created by a
    /// `[header]` or dotted key takes its place where it was first named), each with one value.
    public struct Table: Sendable, Equatable {
        /// Every key once, in written order.
        public private(set) var keys: [String] = []
        private var values: [String: Value] = [:]

        /// An empty table.
        public init() {}

        /// The value at `key`, or nil.
        public subscript(key: String) -> Value? { values[key] }

        /// Sets a value; a new key goes last.
        mutating func set(_ key: String, _ value: Value) {
            if values.updateValue(value, forKey: key) == nil { keys.append(key) }
        }
    }
}
