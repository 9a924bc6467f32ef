//! Every list the registry answers is paged the same way: 1-based, bounded, with the total.

/// A page of a list: 1-based number, bounded size.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub size: usize,
    pub number: usize,
}

impl Page {
    pub const MAX_SIZE: usize = 1000;

    pub const ALL: Page = Page { size: Page::MAX_SIZE, number: 1 };

    /// The page a caller asked for (100 items, first page, unless it says otherwise), or
    /// `None` when it asks for an empty or oversized page or a page before the first.
    pub fn asked(size: Option<usize>, number: Option<usize>) -> Option<Page> {
        let (size, number) = (size.unwrap_or(100), number.unwrap_or(1));
        (size > 0 && size <= Page::MAX_SIZE && number > 0).then_some(Page { size, number })
    }

    /// This page of `items` (of which there are `total`) and the total.
    pub fn of<T>(self, items: impl Iterator<Item = T>, total: usize) -> Listed<T> {
        let size = self.size.clamp(1, Page::MAX_SIZE);
        let skip = self.number.saturating_sub(1).saturating_mul(size);
        Listed { items: items.skip(skip).take(size).collect(), total }
    }
}

/// One page of a list and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_one_based_and_bounded() {
        let page = |size, number| Page { size, number }.of(0..10, 10).items;
        assert_eq!(page(3, 1), vec![0, 1, 2]);
        assert_eq!(page(3, 4), vec![9]);
        assert_eq!(page(3, 5), Vec::<i32>::new());
        assert_eq!(page(0, 0), vec![0], "size 0 is one item, page 0 is the first");
        assert_eq!(page(5000, 1).len(), 10);
    }
}
