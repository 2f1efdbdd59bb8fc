// Loading data for a page: the value, a human error, and a way to load again.

import { useCallback, useEffect, useState } from 'preact/hooks';
import { humanError } from './api';

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  reload: () => void;
}

export function useLoad<T>(load: () => Promise<T>, deps: unknown[], refreshMs?: number): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);

  useEffect(() => {
    let current = true;
    load().then(
      (value) => {
        if (!current) return;
        setData(value);
        setError(null);
      },
      (err) => current && setError(humanError(err)),
    );
    return () => {
      current = false;
    };
  }, [...deps, generation]);

  useEffect(() => {
    if (!refreshMs) return;
    const timer = window.setInterval(reload, refreshMs);
    return () => window.clearInterval(timer);
  }, [refreshMs, reload]);

  return { data, error, reload };
}
