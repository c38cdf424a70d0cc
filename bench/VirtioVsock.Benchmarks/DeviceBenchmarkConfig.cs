using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace VirtioVsock.Benchmarks;

/// <summary>Adds a GB/s column: 64 KiB per operation divided by the mean time.</summary>
public sealed class DeviceBenchmarkConfig : ManualConfig
{
    public DeviceBenchmarkConfig()
    {
        AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(8));
        AddColumn(new ThroughputColumn());
    }

    private sealed class ThroughputColumn : IColumn
    {
        public string Id => "GBps";
        public string ColumnName => "GB/s (64 KiB ops)";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Throughput for 64 KiB operations (PingPong: round trips per second in millions instead).";
        public bool IsDefault(BenchmarkDotNet.Reports.Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(BenchmarkDotNet.Reports.Summary summary) => true;

        public string GetValue(BenchmarkDotNet.Reports.Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase) =>
            GetValue(summary, benchmarkCase, BenchmarkDotNet.Reports.SummaryStyle.Default);

        public string GetValue(BenchmarkDotNet.Reports.Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase, BenchmarkDotNet.Reports.SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is null)
            {
                return "-";
            }

            double nanoseconds = report.ResultStatistics.Mean;
            return benchmarkCase.Descriptor.WorkloadMethod.Name == nameof(DeviceBenchmarks.PingPong1Byte)
                ? (1e3 / nanoseconds).ToString("0.000") + " M/s"
                : (64.0 * 1024 / nanoseconds).ToString("0.00");
        }
    }
}
