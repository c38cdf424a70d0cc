using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace VhostUserVsock.Metrics;

/// <summary>
/// Reads the instruments of one <see cref="Meter"/> (by name, normally <c>VirtioVsock</c>) with a
/// <see cref="MeterListener"/> and renders them in the Prometheus text exposition format (version 0.0.4).
/// Observable instruments are read at each <see cref="Collect"/>; counters that record (not observable) are summed
/// as they record. Owns its listener; must never enable instruments of other meters or hold a lock while an
/// instrument's callback runs other than its own.
/// </summary>
public sealed class MeterCollector : IDisposable
{
    private readonly string _meterName;
    private readonly MeterListener _listener = new();
    private readonly Lock _gate = new();
    private readonly Lock _collecting = new();
    private readonly Dictionary<Instrument, Dictionary<string, double>> _observed = [];
    private readonly Dictionary<Instrument, Dictionary<string, double>> _summed = [];

    /// <summary>Starts listening to the meter's instruments (those published now and later).</summary>
    /// <param name="meterName">The meter's name.</param>
    public MeterCollector(string meterName)
    {
        ArgumentException.ThrowIfNullOrEmpty(meterName);
        _meterName = meterName;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == _meterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.MeasurementsCompleted = (instrument, _) =>
        {
            lock (_gate)
            {
                _observed.Remove(instrument);
                _summed.Remove(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>Reads every instrument now and renders the Prometheus text.</summary>
    /// <returns>The exposition, one family per instrument (<c># HELP</c>, <c># TYPE</c>, samples).</returns>
    public string Collect()
    {
        lock (_collecting)
        {
            lock (_gate)
            {
                _observed.Clear();
            }

            _listener.RecordObservableInstruments();
            var families = new List<(Instrument Instrument, Dictionary<string, double> Samples)>();
            lock (_gate)
            {
                families.AddRange(_observed.Select(pair => (pair.Key, new Dictionary<string, double>(pair.Value))));
                families.AddRange(_summed.Select(pair => (pair.Key, new Dictionary<string, double>(pair.Value))));
            }

            var text = new StringBuilder();
            foreach ((Instrument instrument, Dictionary<string, double> samples) in families.OrderBy(f => f.Instrument.Name, StringComparer.Ordinal))
            {
                PrometheusText.AppendFamily(text, instrument, samples);
            }

            return text.ToString();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string labels = PrometheusText.Labels(tags);
        lock (_gate)
        {
            if (instrument.IsObservable)
            {
                Samples(_observed, instrument)[labels] = value;
            }
            else if (PrometheusText.IsCounter(instrument))
            {
                Dictionary<string, double> samples = Samples(_summed, instrument);
                samples[labels] = samples.GetValueOrDefault(labels) + value;
            }
            else
            {
                // A histogram or a recorded gauge: the last value (histograms are not exported as such).
                Samples(_summed, instrument)[labels] = value;
            }
        }
    }

    private static Dictionary<string, double> Samples(Dictionary<Instrument, Dictionary<string, double>> all, Instrument instrument)
    {
        if (!all.TryGetValue(instrument, out Dictionary<string, double>? samples))
        {
            samples = new Dictionary<string, double>(StringComparer.Ordinal);
            all.Add(instrument, samples);
        }

        return samples;
    }
}
