extension RandomAccessCollection where Index == Int {
    /// In a collection sorted so that every element `isBelow` accepts comes first, the index of
    /// the first it does not accept (`endIndex` if none): a binary search.
    func partitionPoint(_ isBelow: (Element) -> Bool) -> Int {
        var low = startIndex
        var high = endIndex
        while low < high {
            let middle = low + (high - low) / 2
            if isBelow(self[middle]) { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
