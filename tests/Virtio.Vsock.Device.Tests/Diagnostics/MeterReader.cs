using System.Diagnostics.Metrics;

namespace Virtio.Vsock.Device.Tests.Diagnostics;

/// <summary>Reads the <see cref="VsockMeter"/> instruments of one guest CID with a <see cref="MeterListener"/>, as a collector would.</summary>
internal static class MeterReader
{
    /// <summary>Collects once: instrument name, plus <c>/tagvalue</c> for each tag other than the CID, to value.</summary>
    public static Dictionary<string, long> Collect(ulong guestCid)
    {
        _ = VsockMeter.Meter;
        var values = new Dictionary<string, long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == VsockMeter.MeterName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string key = instrument.Name;
            bool ours = false;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == VsockMeter.GuestCidTag)
                {
                    ours = tag.Value is long cid && (ulong)cid == guestCid;
                }
                else
                {
                    key += "/" + tag.Value;
                }
            }

            if (ours)
            {
                lock (values)
                {
                    values[key] = value;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }
}
